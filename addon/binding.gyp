{
  "targets": [
    {
      "target_name": "vlab_addon",
      "sources": ["src/addon.cc", "src/js_errors.cc", "src/cryptodev.cc", "src/vhost.cc", "src/evp_engine.cc"],
      "libraries": ["-lcrypto"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror=return-type"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
