// k6: idle VUs (memory per VU); each VU makes one request, so it holds an
// initialised HTTP client and a kept-alive connection, then sleeps for the whole test.
import http from 'k6/http';
import { sleep } from 'k6';

const URL = __ENV.URL;

export default function () {
  http.get(URL);
  sleep(3600);
}
