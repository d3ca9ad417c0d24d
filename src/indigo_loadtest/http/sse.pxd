# C declarations for the compiled build of sse.py (setup.py); without them, or without
# Cython, the module runs as plain Python. SSEParser becomes an extension type: its
# fields are C struct members; sizes and counts are C integers (64-bit: far above any
# limit they are compared with).
cimport cython

cdef class SSEParser:
    cdef public list _pending
    cdef public Py_ssize_t _held, _count, max_event_size, max_events
    cdef public bint _cr, _started
    cdef public object last_id, retry

    @cython.locals(data=bytes)
    cpdef single_data(self, chunk)
