"""Multi Model Server compatibility: the ``multi-model-server`` and ``model-archiver`` commands.

Framework containers (Hugging Face, MXNet, in-house MMS images) start MMS themselves instead of
calling ``model_server.start_model_server``. These modules give them MMS's commands, properties
file and process shape, running our server; the ``mms`` package (``src/mms``) gives them MMS's
Python names, backed by the classes our workers use. Map: ``properties`` (configuration, pure),
``launcher`` (the command), ``frontend`` (the server process), ``processes`` (pid file and
lookup), ``archiver`` (``model-archiver``), ``detect`` (the Java MMS installed beside us).
"""
