// k6: measured request duration minus the server's own reported processing time.
import http from 'k6/http';
import { Trend } from 'k6/metrics';

const URL = __ENV.URL;
const overhead = new Trend('timing_overhead', true);

export default function () {
  const res = http.get(URL);
  const serverUs = parseFloat(res.headers['X-Server-Time-Us']);
  overhead.add(res.timings.duration - serverUs / 1000);
}
