# C declarations for the compiled build of sse.py (setup.py); without them, or without
# Cython, the module runs as plain Python. SSEParser becomes an extension type: its
# fields are C struct members; the held size and the event count are C integers
# (64-bit: they stop growing at their limit, and a limit is the Python int it was set to).
cimport cython

cdef class SSEParser:
    cdef public list _pending
    cdef public Py_ssize_t _held, _count
    cdef public object max_event_size, max_events  # any whole number a limit may be
    cdef public bint _cr, _started
    cdef public object last_id, retry

    @cython.locals(data=bytes)
    cpdef single_data(self, chunk)
