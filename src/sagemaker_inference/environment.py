"""This module contains functionality that provides access to system
characteristics, environment variables and configuration settings.

``base_dir``, ``model_dir`` and ``code_dir`` are computed once, at import, exactly as upstream:
downstream code imports them as module-level strings and patches ``Environment``.
"""

from __future__ import annotations

import os
from typing import Any

from sagemaker_inference import content_types, logging, parameters

logger = logging.get_logger()

DEFAULT_MODULE_NAME = "inference.py"
DEFAULT_MODEL_SERVER_TIMEOUT = "60"
DEFAULT_STARTUP_TIMEOUT = "600"  # 10 minutes
DEFAULT_HTTP_PORT = "8080"
DEFAULT_VMARGS = "-XX:-UseContainerSupport"
DEFAULT_MAX_REQUEST_SIZE = None

SAGEMAKER_BASE_PATH: str = os.path.join("/opt", "ml")

base_dir: str = os.environ.get(parameters.BASE_PATH_ENV, SAGEMAKER_BASE_PATH)

# Exactly "true" (case-sensitive) selects multi-model mode, as upstream.
if os.environ.get(parameters.MULTI_MODEL_ENV) == "true":
    model_dir: str = os.path.join(base_dir, "models")
else:
    model_dir = os.path.join(base_dir, "model")

code_dir: str = os.path.join(model_dir, "code")
"""str: the path of the user's code directory, e.g., /opt/ml/model/code/"""


class Environment:
    """Provides access to aspects of the serving environment relevant to serving containers,
    including system characteristics, environment variables and configuration settings.

    The Environment is a read-only snapshot of the container environment, taken when it is
    constructed. Numeric settings are parsed in the constructor by the server's own rules
    (``server.config``: empty means unset, ``30.0`` is 30, non-finite or non-ASCII numbers are
    refused), and a bad value raises ``ConfigError`` (a ``ValueError``) naming the variable,
    except ``max_request_size`` which is parsed on access.

    Attributes:
        module_name (str): The name of the user-provided module. Default is inference.py.
        model_server_timeout (int): Timeout for the model server. Default is 60.
        model_server_timeout_seconds (Optional[int]): Timeout in seconds for the model server.
            Default is None.
        model_server_workers (str): Number of worker processes the model server will use.
        default_accept (str): The desired default MIME type of the inference in the response
            (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT), 'application/json' by default.
        inference_http_port (str): Port for invocations and pings. Default is 8080.
        safe_port_range (str): HTTP port range users can use to avoid collisions,
            for example 1111-2222.
    """

    def __init__(self) -> None:
        env = os.environ
        self._module_name = env.get(parameters.USER_PROGRAM_ENV, DEFAULT_MODULE_NAME)
        self._model_server_timeout = _seconds(parameters.MODEL_SERVER_TIMEOUT_ENV, DEFAULT_MODEL_SERVER_TIMEOUT)
        self._model_server_timeout_seconds = _seconds(parameters.MODEL_SERVER_TIMEOUT_SECONDS_ENV, None)
        # Downstream (Hugging Face) writes this private attribute before generating a config.
        self._model_server_workers = env.get(parameters.MODEL_SERVER_WORKERS_ENV)
        self._startup_timeout = _seconds(parameters.STARTUP_TIMEOUT_ENV, DEFAULT_STARTUP_TIMEOUT)
        self._default_accept = env.get(parameters.DEFAULT_INVOCATIONS_ACCEPT_ENV, content_types.JSON)
        # Upstream reads the same variable for both ports.
        self._inference_http_port = env.get(parameters.BIND_TO_PORT_ENV, DEFAULT_HTTP_PORT)
        self._management_http_port = env.get(parameters.BIND_TO_PORT_ENV, DEFAULT_HTTP_PORT)
        self._safe_port_range = env.get(parameters.SAFE_PORT_RANGE_ENV)
        self._vmargs = env.get(parameters.MODEL_SERVER_VMARGS, DEFAULT_VMARGS)
        self._max_request_size_in_mb = env.get(parameters.MAX_REQUEST_SIZE, DEFAULT_MAX_REQUEST_SIZE)

    @staticmethod
    def _parse_module_name(program_param: str | None) -> str | None:
        """Given a module name or a script name, return the module name.

        Args:
            program_param (str): Module or script name.

        Returns:
            str: Module name.
        """
        if program_param and program_param.endswith(".py"):
            return program_param[:-3]
        return program_param

    @property
    def module_name(self) -> str:
        """str: Name of the user-provided module."""
        return self._parse_module_name(self._module_name)  # type: ignore[return-value]

    @property
    def model_server_timeout(self) -> int:
        """int: Timeout used for model server's backend workers before they are
        deemed unresponsive and rebooted.
        """
        return self._model_server_timeout

    @property
    def model_server_timeout_seconds(self) -> int | None:
        """int: Timeout, in seconds, used for model server's backend workers before
        they are deemed unresponsive and rebooted.
        """
        return self._model_server_timeout_seconds

    @property
    def model_server_workers(self) -> str | None:
        """str: Number of worker processes the model server is configured to use."""
        return self._model_server_workers

    @property
    def startup_timeout(self) -> int:
        """int: Timeout, in seconds, used for starting up the model server and fetching
        its process id, before giving up and throwing error.
        """
        return self._startup_timeout

    @property
    def default_accept(self) -> str:
        """str: The desired default MIME type of the inference in the response."""
        return self._default_accept

    @property
    def inference_http_port(self) -> str:
        """str: HTTP port that SageMaker uses to handle invocations and pings."""
        return self._inference_http_port

    @property
    def management_http_port(self) -> str:
        """str: HTTP port that SageMaker uses to handle model management requests."""
        return self._management_http_port

    @property
    def safe_port_range(self) -> str | None:
        """str: HTTP port range that can be used by users to avoid collisions with the HTTP port
        specified by SageMaker for handling pings and invocations.
        """
        return self._safe_port_range

    @property
    def vmargs(self) -> str:
        """str: vmargs can be provided for the JVM, to be overriden"""
        return self._vmargs

    @property
    def max_request_size(self) -> int | None:
        """int: max request size set by Sagemaker platform in bytes (the variable is in MB)."""
        if self._max_request_size_in_mb is None:
            return None
        from sagemaker_inference.server.config import env_megabytes  # imports dataclasses: only when asked

        return env_megabytes({parameters.MAX_REQUEST_SIZE: self._max_request_size_in_mb}, parameters.MAX_REQUEST_SIZE)


def _seconds(name: str, default: str | None) -> Any:
    """A timeout variable as upstream's ``int`` (a float only when it has a fraction), or ``default``."""
    from sagemaker_inference.server.config import env_number  # the server's rules, imported when used

    value = env_number(os.environ, name, minimum=0.001)
    if value is None:
        return None if default is None else int(default)
    return int(value) if value.is_integer() else value


def _user_module_name() -> str:
    """``SAGEMAKER_PROGRAM`` as a module name (``inference``), without parsing anything else."""
    return Environment._parse_module_name(os.environ.get(parameters.USER_PROGRAM_ENV) or DEFAULT_MODULE_NAME) or ""
