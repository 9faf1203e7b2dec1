"""This module contains functionality to configure and start the model server.

Upstream wrote a Multi Model Server (Java) config file and launched the JVM. ``start_model_server``
keeps upstream's signature, steps and module-level names, but runs our own server in this process
and blocks until it exits: SIGTERM drains in-flight requests instead of being forwarded to a JVM,
and a model that cannot load makes it exit non-zero. The MMS-specific helpers below
(``_generate_mms_config_properties``, ``_retrieve_mms_server_process``, ...) are kept with
upstream's behaviour because downstream containers (Hugging Face, PyTorch) import and test them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any, Callable

from sagemaker_inference import environment, logging, utils
from sagemaker_inference.environment import code_dir

logger = logging.get_logger()
logging.configure_logger()

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

MMS_CONFIG_FILE = "/etc/sagemaker-mms.properties"
DEFAULT_HANDLER_SERVICE = "sagemaker_inference.default_handler_service"
DEFAULT_MMS_CONFIG_FILE = os.path.join(_PACKAGE_DIR, "etc", "default-mms.properties")
MME_MMS_CONFIG_FILE = os.path.join(_PACKAGE_DIR, "etc", "mme-mms.properties")
DEFAULT_MMS_LOG_FILE = os.path.join(_PACKAGE_DIR, "etc", "log4j2.xml")
DEFAULT_MMS_MODEL_EXPORT_DIRECTORY = os.path.join(os.getcwd(), ".sagemaker/mms/models")
DEFAULT_MMS_MODEL_NAME = "model"

ENABLE_MULTI_MODEL = os.getenv("SAGEMAKER_MULTI_MODEL", "false") == "true"

MODEL_STORE = "/"
PYTHON_PATH_ENV = "PYTHONPATH"
REQUIREMENTS_PATH = os.path.join(code_dir, "requirements.txt")
MMS_NAMESPACE = "com.amazonaws.ml.mms.ModelServer"

# How long pip may wait on an unreachable index before we give up (upstream could hang for
# minutes). Only defaults: a user's own PIP_* settings win.
_PIP_FAST_FAIL = {"PIP_DEFAULT_TIMEOUT": "15", "PIP_RETRIES": "1"}
REQUIREMENTS_TIMEOUT_ENV = "SAGEMAKER_REQUIREMENTS_TIMEOUT"
DEFAULT_REQUIREMENTS_TIMEOUT = 1200.0  # seconds for the whole install
# The server's own distributions: a requirements.txt may not replace them under the running
# server (they are pinned to the installed versions with a pip constraints file).
SERVER_DISTRIBUTIONS = ("sagemaker-inference", "httptools", "uvloop", "prometheus_client")
# pip settings that add or change where packages come from; dropped when an index is enforced.
_PIP_SOURCE_SETTINGS = ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST", "PIP_NO_INDEX")
# requirements.txt options that change where packages come from (refused when an index is enforced).
_SOURCE_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host",
                   "-e", "--editable", "-r", "--requirement", "-c", "--constraint", "--no-index")


def __getattr__(name: str) -> Any:
    """``psutil`` and ``boto3`` are imported on first use only (tests may patch them here)."""
    if name in ("psutil", "boto3"):
        import importlib

        module = importlib.import_module(name)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _lazy(name: str) -> Any:
    return globals()[name] if name in globals() else __getattr__(name)


def retry(wait_fixed: int = 1000, stop_max_delay: int | None = None) -> Callable[[Callable[..., Any]],
                                                                                    Callable[..., Any]]:
    """The subset of ``retrying.retry`` upstream uses: retry on any exception every ``wait_fixed``
    ms until ``stop_max_delay`` ms have passed, then re-raise the last exception."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            while True:
                try:
                    return func(*args, **kwargs)
                except Exception:
                    elapsed_ms = (time.monotonic() - start) * 1000
                    if stop_max_delay is not None and elapsed_ms + wait_fixed > stop_max_delay:
                        raise
                    time.sleep(wait_fixed / 1000.0)

        return wrapper

    return decorate


def start_model_server(handler_service: str = DEFAULT_HANDLER_SERVICE) -> None:
    """Configure and start the model server, and block until it stops.

    Args:
        handler_service (str): Python path pointing to a module that defines
            a class with the following:

                - A ``handle`` method, which is invoked for all incoming inference
                    requests to the model server.
                - A ``initialize`` method, which is invoked at model server start up
                    for loading the model.

            Defaults to ``sagemaker_inference.default_handler_service``.

    Raises:
        SystemExit: with a non-zero code when the server could not start or the model could
            not be loaded (one clear line is logged first).
    """
    from sagemaker_inference.server import startup_signals

    startup_signals.install()  # first: as PID 1, a SIGTERM without a handler would be lost
    if ENABLE_MULTI_MODEL and not os.environ.get("SAGEMAKER_HANDLER"):
        os.environ["SAGEMAKER_HANDLER"] = handler_service

    from sagemaker_inference.server import serve
    from sagemaker_inference.server.config import ConfigError, ServerConfig
    from sagemaker_inference.server.logs import configure as configure_logging

    try:
        config = ServerConfig.from_env(
            os.environ,
            model_dir=environment.model_dir,
            handler=None if ENABLE_MULTI_MODEL else handler_service,
            multi_model=ENABLE_MULTI_MODEL,
        )
        environment.Environment()  # the toolkit's view of the same variables, by the same rules
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        raise SystemExit(2) from None
    configure_logging(config.log_level, config.log_format)  # before pip, so its INFO lines show

    _set_python_path()

    if os.path.exists(REQUIREMENTS_PATH):
        _install_requirements()
    if startup_signals.received():
        logger.info("stopped during startup (signal %d)", startup_signals.received())
        return
    exit_code = serve(config)
    if exit_code:
        raise SystemExit(exit_code)


def _adapt_to_mms_format(handler_service: str) -> None:
    """Legacy (upstream < 1.8): build an MMS model archive. Kept for callers; needs model-archiver."""
    if not os.path.exists(DEFAULT_MMS_MODEL_EXPORT_DIRECTORY):
        os.makedirs(DEFAULT_MMS_MODEL_EXPORT_DIRECTORY)

    model_archiver_cmd = [
        "model-archiver",
        "--model-name",
        DEFAULT_MMS_MODEL_NAME,
        "--handler",
        handler_service,
        "--model-path",
        environment.model_dir,
        "--export-path",
        DEFAULT_MMS_MODEL_EXPORT_DIRECTORY,
        "--archive-format",
        "no-archive",
    ]

    logger.info(model_archiver_cmd)
    subprocess.check_call(model_archiver_cmd)

    _set_python_path()


def _set_python_path() -> None:
    # Workers inherit this environment, so the user's code directory is importable there.
    code_dir_path = f"{environment.code_dir}:"

    if PYTHON_PATH_ENV in os.environ:
        os.environ[PYTHON_PATH_ENV] = code_dir_path + os.environ[PYTHON_PATH_ENV]
    else:
        os.environ[PYTHON_PATH_ENV] = code_dir_path


def _create_model_server_config_file(env: Any, handler_service: str | None = None) -> None:
    """Write MMS's properties file (for callers that still launch MMS themselves)."""
    configuration_properties = _generate_mms_config_properties(env, handler_service)

    utils.write_file(MMS_CONFIG_FILE, configuration_properties)


def _generate_mms_config_properties(env: Any, handler_service: str | None = None) -> str:
    user_defined_configuration = {
        "default_response_timeout": env.model_server_timeout,
        "default_workers_per_model": env.model_server_workers,
        "inference_address": f"http://0.0.0.0:{env.inference_http_port}",
        "management_address": f"http://0.0.0.0:{env.management_http_port}",
        "vmargs": env.vmargs,
        "max_request_size": env.max_request_size,
    }

    if handler_service:
        user_defined_configuration["default_service_handler"] = handler_service

    if env.model_server_timeout_seconds:
        user_defined_configuration["default_response_timeout_seconds"] = env.model_server_timeout_seconds

    custom_configuration = ""

    for key in user_defined_configuration:
        value = user_defined_configuration.get(key)
        if value:
            custom_configuration += f"{key}={value}\n"

    if ENABLE_MULTI_MODEL:
        default_configuration = utils.read_file(MME_MMS_CONFIG_FILE)
    else:
        default_configuration = utils.read_file(DEFAULT_MMS_CONFIG_FILE)

    return default_configuration + custom_configuration


def _add_sigterm_handler(mms_process: Any) -> None:
    def _terminate(signo: int, frame: Any) -> None:  # pylint: disable=unused-argument
        try:
            os.kill(mms_process.pid, signal.SIGTERM)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, _terminate)


def _install_requirements() -> None:
    """``pip install -r code/requirements.txt``; ``ValueError`` when it fails.

    Differences from upstream (docs/compatibility.md): the CodeArtifact index (with its token)
    goes to pip through ``PIP_INDEX_URL``, never the command line or a log; with an index enforced,
    requirement lines that change where packages come from are refused and pip's config files and
    ``PIP_*`` source settings are ignored; the server's own packages are pinned by a constraints
    file; the install is bounded by ``SAGEMAKER_REQUIREMENTS_TIMEOUT`` and a SIGTERM stops it.
    """
    from sagemaker_inference.server import startup_signals
    from sagemaker_inference.server.config import env_number

    logger.info("installing packages from requirements.txt...")
    timeout = env_number(os.environ, REQUIREMENTS_TIMEOUT_ENV, minimum=1.0) or DEFAULT_REQUIREMENTS_TIMEOUT
    env = dict(os.environ)
    for name, value in _PIP_FAST_FAIL.items():
        env.setdefault(name, value)
    if os.getenv("CA_REPOSITORY_ARN"):
        _refuse_source_options(REQUIREMENTS_PATH)
        for name in _PIP_SOURCE_SETTINGS:
            env.pop(name, None)
        env.update(PIP_INDEX_URL=_get_codeartifact_index(), PIP_CONFIG_FILE=os.devnull)
    pip_install_cmd = [sys.executable, "-m", "pip", "install", "-r", REQUIREMENTS_PATH]
    with _server_constraints() as constraints:
        if constraints:
            pip_install_cmd += ["-c", constraints]
        try:
            status = startup_signals.run(pip_install_cmd, env, timeout)
        except subprocess.TimeoutExpired:
            logger.error("installing %s took longer than %g s (%s); exiting", REQUIREMENTS_PATH, timeout,
                         REQUIREMENTS_TIMEOUT_ENV)
            raise ValueError("failed to install required packages") from None
    if startup_signals.received():
        return
    if status:
        logger.error(
            "failed to install required packages from %s (is a package index reachable? pip's output is above), "
            "exiting", REQUIREMENTS_PATH)
        raise ValueError("failed to install required packages")


def _refuse_source_options(path: str) -> None:
    """With an index enforced (``CA_REPOSITORY_ARN``), a requirements file may not name another
    source: index options, find-links, trusted hosts, nested files, editables, URLs or paths."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read().replace("\\\n", " ")
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*", "", line).strip()
        if not line:
            continue
        first = line.split()[0]
        option = first.split("=", 1)[0]
        refused = any(option == o or (len(o) == 2 and option.startswith(o)) for o in _SOURCE_OPTIONS)
        if refused or "://" in line or " @ " in line or first.startswith((".", "/", "~")):
            logger.error("%s line %d (%r) changes where packages come from, which is not allowed while "
                         "CA_REPOSITORY_ARN enforces the CodeArtifact index; remove it", path, number, line[:200])
            raise ValueError("failed to install required packages")


@contextlib.contextmanager
def _server_constraints() -> Iterator[str | None]:
    """A pip constraints file pinning the server's own distributions to the installed versions."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in SERVER_DISTRIBUTIONS:
        try:
            pins.append(f"{name}=={version(name)}\n")
        except PackageNotFoundError:
            continue
    if not pins:
        yield None
        return
    with tempfile.NamedTemporaryFile("w", prefix="sagemaker-inference-constraints-", suffix=".txt") as f:
        f.writelines(pins)
        f.flush()
        yield f.name


def _get_codeartifact_index() -> str:
    """
    Build the authenticated codeartifact index url
    https://docs.aws.amazon.com/codeartifact/latest/ug/python-configure-pip.html
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodeartifact.html#awscodeartifact-resources-for-iam-policies
    :return: authenticated codeartifact index url
    """
    repository_arn = os.getenv("CA_REPOSITORY_ARN")
    arn_regex = (
        "arn:(?P<partition>[^:]+):codeartifact:(?P<region>[^:]+):(?P<account>[^:]+)"
        ":repository/(?P<domain>[^/]+)/(?P<repository>.+)"
    )
    m = re.match(arn_regex, repository_arn or "")
    if not m:
        raise Exception(f"invalid CodeArtifact repository arn {repository_arn}")
    domain = m.group("domain")
    owner = m.group("account")
    repository = m.group("repository")
    region = m.group("region")

    logger.info(
        "configuring pip to use codeartifact (domain: %s, domain owner: %s, repository: %s, region: %s)",
        domain,
        owner,
        repository,
        region,
    )
    try:
        client = _lazy("boto3").client("codeartifact", region_name=region)
        auth_token_response = client.get_authorization_token(domain=domain, domainOwner=owner)
        token = auth_token_response["authorizationToken"]
        endpoint_response = client.get_repository_endpoint(
            domain=domain, domainOwner=owner, repository=repository, format="pypi"
        )
        unauthenticated_index = endpoint_response["repositoryEndpoint"]
        return re.sub(
            "https://",
            f"https://aws:{token}@",
            re.sub(
                f"{repository}/?$",
                f"{repository}/simple/",
                unauthenticated_index,
            ),
        )
    except Exception as exc:
        logger.error("failed to configure pip to use codeartifact")
        raise Exception("failed to configure pip to use codeartifact") from exc


def _retry_retrieve_mms_server_process(startup_timeout: int) -> Any:
    retrieve_mms_server_process = retry(wait_fixed=1000, stop_max_delay=startup_timeout * 1000)(
        _retrieve_mms_server_process
    )
    return retrieve_mms_server_process()


def _retrieve_mms_server_process() -> Any:
    """The server ``multi-model-server --start`` launched: ours (its pid file names it) or a JVM.

    Upstream scanned every process for ``MMS_NAMESPACE`` in its command line; our server has that
    element in its command line too, so the scan (kept for launchers that write no pid file where
    we look) finds either. The pid file comes first, and the scan only counts servers in this
    process's session (the launcher we ran, and the server it leaves behind, inherit it): another
    server on the same machine is never the one we wait on and forward SIGTERM to. Returns
    ``psutil.Process`` when psutil is installed, else an object with the same ``pid``, ``wait()``,
    ``is_running()`` and ``terminate()``.
    """
    from sagemaker_inference.mms_compat import processes

    pid = processes.started_server()
    if pid is not None:
        found = processes.process(pid)
    else:
        servers = _scan_mms_server_processes()
        if not servers:
            raise Exception("mms model server was unsuccessfully started")
        if len(servers) > 1:
            raise Exception("multiple mms model servers are not supported")
        found = servers[0]
    if "-cp" in processes.cmdline(found.pid):
        from sagemaker_inference.mms_compat import detect

        logger.warning("found the Java Multi Model Server (pid %d), not sagemaker-inference's: %s", found.pid,
                       detect.conflict_message() or "the multi-model-server command on PATH is not ours")
    return found


def _scan_mms_server_processes() -> list[Any]:
    """Upstream's scan (with psutil when it is installed, else over /proc), within our session."""
    from sagemaker_inference.mms_compat import processes

    try:
        psutil = _lazy("psutil")
    except ImportError:
        return [processes.ServerProcess(pid) for pid in processes.scan() if processes.same_session(pid)]
    servers = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if MMS_NAMESPACE in process.cmdline() and processes.same_session(process.pid):
                servers.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return servers


def _reap_children(signo: int, frame: Any) -> None:
    # Upstream logged "Failed to reap children process" whenever no child was left to reap (every
    # time the server exited); having none left is the normal end, not a failure.
    pid = 1
    try:
        while pid > 0:
            pid, status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        logger.error("Failed to reap children process")


def _add_sigchild_handler() -> None:
    signal.signal(signal.SIGCHLD, _reap_children)
