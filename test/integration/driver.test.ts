// One VM boot: the guest /dev/crypto driver against QEMU's builtin virtio-crypto backend.
import { driverSuite } from './driver-suite';

driverSuite('builtin');
