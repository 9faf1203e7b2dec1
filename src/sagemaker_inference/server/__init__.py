"""Our model server: an asyncio HTTP frontend and a pool of worker processes per model.

Nothing here runs at import time; ``cli.main`` and ``supervisor.run`` are the entry points.
"""
