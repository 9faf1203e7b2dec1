"""Worker processes: the frame protocol, the process main loop and the frontend-side pool."""
