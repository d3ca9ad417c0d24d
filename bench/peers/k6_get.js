// k6: a trivial GET in a closed loop (the plain request-rate benchmark).
import http from 'k6/http';

const URL = __ENV.URL;

export default function () {
  http.get(URL);
}
