"""The Qt viewer: thin widgets that observe a `birdview.core.session.Session`."""
