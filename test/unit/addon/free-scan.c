// SPDX-License-Identifier: MIT
/*
 * LD_PRELOAD shim for key-heap.test.ts: every block handed to free() (operator delete ends there
 * too) is searched for FREE_SCAN_KEY (hex) before it is released; a hit is reported on stderr as
 * "FREE-SCAN-HIT size=N". A self-test at load proves the scan works in the process it is loaded into.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void (*real_free)(void *);
static unsigned char key[64];
static size_t key_len;
static int resolving;
/* The load-time self-test's hit is labelled apart from the process's own. */
static const char *hit_label = "FREE-SCAN-SELFTEST";

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void report(const char *what, size_t size)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "%s size=%zu\n", what, size);

	if (n > 0 && write(2, line, (size_t)n) < 0)
		return;
}

static int holds_key(void *p)
{
	size_t size;

	if (!p || key_len == 0)
		return 0;
	size = malloc_usable_size(p);
	return size >= key_len && size <= (16u << 20) &&
	       memmem(p, size, key, key_len) != NULL;
}

void free(void *p)
{
	if (!real_free) {
		if (resolving)
			return; /* dlsym freeing during its own lookup: leak it */
		resolving = 1;
		real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
		resolving = 0;
		if (!real_free)
			return;
	}
	if (holds_key(p))
		report(hit_label, malloc_usable_size(p));
	real_free(p);
}

__attribute__((constructor)) static void free_scan_init(void)
{
	const char *hex = getenv("FREE_SCAN_KEY");
	size_t i;
	unsigned char *probe;

	if (!hex)
		return;
	for (i = 0; hex[2 * i] && hex[2 * i + 1] && i < sizeof(key); i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	probe = malloc(640);
	if (!probe)
		return;
	memset(probe, 0, 640);
	memcpy(probe + 100, key, i);
	key_len = i;
	free(probe); /* through the hook: must report FREE-SCAN-SELFTEST */
	hit_label = "FREE-SCAN-HIT";
}
