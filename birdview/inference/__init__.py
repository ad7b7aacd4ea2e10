"""The model half of BirdView.

Only `client`, `protocol` and `errors` may be imported by the viewer: they need no torch. The
rest (loading, the engine, the worker's main loop) runs in the worker process.
"""
