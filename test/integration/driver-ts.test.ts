// One VM boot: the same guest driver suite against our TypeScript vhost-user backend.
import { driverSuite } from './driver-suite';

driverSuite('ts');
