"""HDF5 recorder: crash-safe SWMR archive of raw streams, events and provenance.

`recorder.sink.RecorderSink` writes (in-process, lossless), `recorder.reader`
reads back (also while a writer is still appending), `recorder.integrity`
keeps and checks the SHA-256 chain over the raw data, and
`recorder.subscriber_recorder` archives a remote publisher. The file layout is
defined in `recorder.layout` and documented in docs/recording.md.
"""
