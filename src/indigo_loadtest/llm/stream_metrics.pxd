# C declarations for the compiled build of stream_metrics.py (setup.py); without them,
# or without Cython, the module runs as plain Python. StreamMeter becomes an extension
# type: its fields are read and set as C struct members on the per-event path.
cimport cython

from indigo_loadtest.http.sse cimport SSEParser
from indigo_loadtest.http.transport cimport PieceSink

cdef class StreamMeter:
    cdef public object request_start, headers_at, token_times, completed, error_message
    cdef public object _parts, _tool_ids, _usage, _prompt, _errors
    cdef public Py_ssize_t _events

    # Called from one another per event: C calls (a Python subclass may still override).
    cpdef feed(self, event, data, t)
    cpdef feed_data(self, data, t)
    cpdef _judge(self, event, obj, t)
    cpdef _chat_chunk(self, dict obj, t)  # orjson's objects: always exactly dict

cdef class EventSink(PieceSink):
    cdef public object resp
    cdef public SSEParser parser
    cdef public StreamMeter meter

    cpdef take(self, data, t)
