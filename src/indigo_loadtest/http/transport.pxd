# C declarations for the compiled build of transport.py (setup.py); without them, or
# without Cython, the module runs as plain Python. Exchange and SinkBatch become
# extension types, so the per-read code (typed with cython.locals in the .py) reads and
# sets an exchange's fields as C struct members. Counts are C integers (64-bit: far
# above any limit they are compared with); times are C doubles.
cimport cython

cdef class Exchange:
    cdef public object fut, limits, decoder, headers_fut, raw_headers, chunks, times
    cdef public object set_cookies, content_encoding, location, error, error_code, status
    cdef public object waiter, sink, sink_batch, sink_error, conn
    cdef public Py_ssize_t body_size, line, decoded, nbytes, buffered
    cdef public double t_first, t_data, t_last, t_headers, deadline
    cdef public bint head, stream, discard, cancelled, complete, headers_done
    cdef public bint informational, framed, user_closed, sink_due

cdef class SinkBatch:
    cdef public object loop
    cdef public list due

cdef class PieceSink:
    cpdef take(self, data, t)

cdef class CallableSink(PieceSink):
    cdef public object func

    cpdef take(self, data, t)

cpdef drain_sink(Exchange ex)
