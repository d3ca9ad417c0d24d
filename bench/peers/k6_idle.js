// k6: idle VUs (memory per VU); each VU sleeps for the whole test.
import { sleep } from 'k6';

export default function () {
  sleep(3600);
}
