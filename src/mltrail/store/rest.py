"""The tracking store of a remote server: the :class:`TrackingStore` protocol over MLflow's REST API.

Works against an mltrail server and an MLflow server alike. One keep-alive ``requests.Session`` per server
(shared by every store and proxied artifact repository that talks to it), retries with exponential backoff on
connection errors and 408/429/5xx for every method including POST (the server's create/log endpoints are
idempotent), honouring ``Retry-After``. Settings (``MLTRAIL_*`` first, ``MLFLOW_*`` second):
``TRACKING_USERNAME``/``TRACKING_PASSWORD`` (Basic auth, wins) or ``TRACKING_TOKEN`` (Bearer),
``HTTP_REQUEST_MAX_RETRIES`` (5), ``HTTP_REQUEST_BACKOFF_FACTOR`` (1 s), ``HTTP_REQUEST_TIMEOUT`` (120 s),
``TRACKING_INSECURE_TLS``, ``TRACKING_SERVER_CERT_PATH``, ``TRACKING_CLIENT_CERT_PATH``.

Like MLflow's client, experiment names, metrics and batches are validated before they are sent, so bad input
fails without a round trip and with the same messages as the local stores.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from mltrail import config
from mltrail.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import (
    ERROR_CODE_HEADER,
    TRANSIENT_ERROR_CODES,
    ErrorCode,
    MltrailException,
    error_code_for_status,
)
from mltrail.validation import (
    SEARCH_MAX_RESULTS_DEFAULT,
    validate_batch,
    validate_experiment_name,
    validate_metric,
)
from mltrail.version import __version__

if TYPE_CHECKING:
    import requests

_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
_API = "/api/2.0/mlflow"


class _Retry(Retry):
    """urllib3's retry policy, except that an mltrail server's answer naming a permanent error (INVALID_STATE is
    a 500, but asking again cannot help) is returned at once instead of being retried with backoff."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):  # type: ignore[no-untyped-def]
        code = response.headers.get(ERROR_CODE_HEADER) if response is not None else None
        if code is not None and code not in TRANSIENT_ERROR_CODES:
            raise MaxRetryError(_pool, url, f"permanent error {code}")
        return super().increment(method, url, response, error, _pool, _stacktrace)


# --- HTTP -------------------------------------------------------------------------------------------


def _env_float(name: str, default: float) -> float:
    value = config.get_env(name)
    try:
        return float(value) if value is not None else default
    except ValueError:
        raise ValueError(f"Environment variable for {name} must be a number, got {value!r}") from None


def _settle_environment(session: requests.Session, base_url: str) -> None:
    """Read once what requests would read from the environment on every request (proxies and ``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, ``~/.netrc``), a noticeable share of a small request's cost."""
    import requests.utils

    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(base_url)
    if session.verify is True:
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    if session.auth is None and "Authorization" not in session.headers:
        session.auth = requests.utils.get_netrc_auth(base_url)


class RestClient:
    """HTTP plumbing for one server: session, retries, auth, TLS, and error mapping."""

    def __init__(self, base_url: str) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.base_url = base_url.rstrip("/")
        retries = config.get_env_int("HTTP_REQUEST_MAX_RETRIES", 5)
        retry = _Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=_env_float("HTTP_REQUEST_BACKOFF_FACTOR", 1.0),
            backoff_jitter=_env_float("HTTP_REQUEST_BACKOFF_JITTER", 0.5),
            backoff_max=60,
            status_forcelist=_RETRY_STATUSES,
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        pool = config.get_env_int("HTTP_POOL_MAXSIZE", 16)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool)
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = f"mltrail-client/{__version__}"
        username, password = config.get_env("TRACKING_USERNAME"), config.get_env("TRACKING_PASSWORD")
        token = config.get_env("TRACKING_TOKEN")
        if username and password:
            session.auth = (username, password)
        elif token:
            session.headers["Authorization"] = f"Bearer {token}"
        if config.get_env_bool("TRACKING_INSECURE_TLS"):
            session.verify = False
        elif cert := config.get_env("TRACKING_SERVER_CERT_PATH"):
            session.verify = cert
        if client_cert := config.get_env("TRACKING_CLIENT_CERT_PATH"):
            session.cert = client_cert
        _settle_environment(session, self.base_url)
        self.session = session
        self.timeout = _env_float("HTTP_REQUEST_TIMEOUT", 120.0)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request (``path`` relative to the server root, or an absolute URL); raise on failure."""
        import requests

        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise MltrailException(f"API request to {url} failed: {exc}", ErrorCode.TEMPORARILY_UNAVAILABLE) from exc
        if response.status_code >= 400:
            raise self.error_for(response)
        return response

    def call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON API call: ``body`` becomes the query string for GET, the JSON body otherwise."""
        if method == "GET":
            response = self.request(method, endpoint, params=body)
        else:
            response = self.request(
                method, endpoint, data=orjson.dumps(body or {}), headers={"Content-Type": "application/json"}
            )
        if not response.content or response.content.strip() in (b'""', b"200 OK"):
            return {}
        try:
            payload = _json(response.content)
        except ValueError:
            raise MltrailException(
                f"API request to {endpoint} returned a response that is not JSON: {response.text[:200]!r}",
                ErrorCode.INTERNAL_ERROR,
            ) from None
        return payload if isinstance(payload, dict) else {}

    @staticmethod
    def error_for(response: requests.Response) -> MltrailException:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and "error_code" in payload:
            return MltrailException(str(payload.get("message", "")), str(payload["error_code"]))
        return MltrailException(
            f"API request to {response.url} failed with error code {response.status_code} != 200. "
            f"Response body: '{response.text[:500]}'",
            error_code_for_status(response.status_code),
        )


def _json(content: bytes) -> Any:
    """A response body's JSON: orjson's parse, or the standard library's for what orjson refuses (bare ``NaN``
    literals, which some servers write)."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)


_clients: dict[str, RestClient] = {}
_clients_lock = threading.Lock()


def client_for(base_url: str) -> RestClient:
    """The shared client (one connection pool) for a server."""
    key = base_url.rstrip("/")
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RestClient(key)
        return client


def _forget_clients_after_fork() -> None:
    global _clients_lock
    _clients_lock = threading.Lock()
    _clients.clear()


os.register_at_fork(after_in_child=_forget_clients_after_fork)


# --- wire decoding and encoding ---------------------------------------------------------------------


def _double_in(value: Any) -> float:
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, math.nan)
    return float(value)


def _double_out(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def _key_values(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}


def experiment_from_json(data: dict[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(data["experiment_id"]),
        name=data.get("name", ""),
        artifact_location=data.get("artifact_location", ""),
        lifecycle_stage=data.get("lifecycle_stage", "active"),
        tags=_key_values(data.get("tags")),
        creation_time=_int_or_none(data.get("creation_time")),
        last_update_time=_int_or_none(data.get("last_update_time")),
    )


def metric_from_json(data: dict[str, Any]) -> Metric:
    get = data.get  # one bound method, positional arguments: histories make millions of these
    value, timestamp, step = get("value", 0.0), get("timestamp", 0), get("step", 0)
    return Metric(
        data["key"],
        value if type(value) is float else _double_in(value),
        timestamp if type(timestamp) is int else int(timestamp),
        step if type(step) is int else int(step),
        get("dataset_name"),
        get("dataset_digest"),
        get("model_id"),
        get("run_id"),
    )


def run_info_from_json(data: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=data.get("run_id") or data["run_uuid"],
        experiment_id=str(data.get("experiment_id", "")),
        run_name=data.get("run_name", ""),
        user_id=data.get("user_id", ""),
        status=RunStatus.parse(data.get("status", "RUNNING")),
        start_time=int(data.get("start_time", 0)),
        end_time=_int_or_none(data.get("end_time")),
        artifact_uri=data.get("artifact_uri", ""),
        lifecycle_stage=data.get("lifecycle_stage", "active"),
    )


def _dataset_input_from_json(data: dict[str, Any]) -> DatasetInput:
    ds = data.get("dataset", {})
    dataset = Dataset(
        name=ds.get("name", ""),
        digest=ds.get("digest", ""),
        source_type=ds.get("source_type", ""),
        source=ds.get("source", ""),
        schema=ds.get("schema"),
        profile=ds.get("profile"),
    )
    return DatasetInput(dataset, tuple(InputTag(t["key"], t.get("value", "")) for t in data.get("tags", ())))


def run_from_json(data: dict[str, Any]) -> Run:
    body = data.get("data", {})
    run_data = RunData(
        latest_metrics=[metric_from_json(m) for m in body.get("metrics", ())],
        params=_key_values(body.get("params")),
        tags=_key_values(body.get("tags")),
    )
    inputs = RunInputs(
        dataset_inputs=[_dataset_input_from_json(d) for d in data.get("inputs", {}).get("dataset_inputs", ())]
    )
    return Run(info=run_info_from_json(data["info"]), data=run_data, inputs=inputs)


def _metric_json(metric: Metric) -> dict[str, Any]:
    value = metric.value
    out: dict[str, Any] = {
        "key": metric.key,
        "value": value if value - value == 0 else _double_out(value),  # true for finite values only
        "timestamp": metric.timestamp,
        "step": metric.step,
    }
    if metric.dataset_name is None and metric.dataset_digest is None and metric.model_id is None:
        return out
    for name in ("dataset_name", "dataset_digest", "model_id"):
        if (extra := getattr(metric, name)) is not None:
            out[name] = extra
    return out


def _pairs(items: Sequence[Param | RunTag | ExperimentTag | InputTag]) -> list[dict[str, str]]:
    return [{"key": item.key, "value": item.value} for item in items]


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


# --- the store --------------------------------------------------------------------------------------


class RestStore:
    """:class:`~mltrail.store.base.TrackingStore` backed by a tracking server at ``tracking_uri``."""

    #: Background batching may send this many metric batches at once (:mod:`mltrail.client.batching`): while
    #: the server stores one, the next is already waiting in the server and the client encodes a third, so
    #: neither side idles between requests (measured: ~8% more points/s than with two).
    parallel_writes = 3

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self.client = client_for(self.tracking_uri)

    def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.client.call(method, _API + endpoint, _without_none(body or {}))

    # --- experiments -------------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] | None = None
    ) -> str:
        validate_experiment_name(name)
        body = {"name": name, "artifact_location": artifact_location, "tags": _pairs(tags or ())}
        return str(self._call("POST", "/experiments/create", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return experiment_from_json(
            self._call("GET", "/experiments/get", {"experiment_id": experiment_id})["experiment"]
        )

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            response = self._call("GET", "/experiments/get-by-name", {"experiment_name": name})
        except MltrailException as exc:
            if exc.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST:
                return None
            raise
        return experiment_from_json(response["experiment"])

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        body = {
            "view_type": ViewType.parse(view_type).name,
            "max_results": SEARCH_MAX_RESULTS_DEFAULT if max_results is None else max_results,
            "filter": filter_string,
            "order_by": list(order_by or ()),
            "page_token": page_token,
        }
        response = self._call("POST", "/experiments/search", body)
        items = [experiment_from_json(e) for e in response.get("experiments", ())]
        return PagedList(items, response.get("next_page_token") or None)

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("POST", "/experiments/delete", {"experiment_id": experiment_id})

    def restore_experiment(self, experiment_id: str) -> None:
        self._call("POST", "/experiments/restore", {"experiment_id": experiment_id})

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validate_experiment_name(new_name)
        self._call("POST", "/experiments/update", {"experiment_id": experiment_id, "new_name": new_name})

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        body = {"experiment_id": experiment_id, "key": tag.key, "value": tag.value}
        self._call("POST", "/experiments/set-experiment-tag", body)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._call("POST", "/experiments/delete-experiment-tag", {"experiment_id": experiment_id, "key": key})

    # --- runs --------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        """``run_id`` is sent as the mltrail extension field of the same name; an MLflow server ignores it and
        chooses an id (callers compare the returned id)."""
        body = {
            "experiment_id": experiment_id,
            "user_id": user_id,
            "start_time": start_time,
            "tags": _pairs(tags or ()),
            "run_name": run_name,
            "run_id": run_id,
        }
        return run_from_json(self._call("POST", "/runs/create", body)["run"])

    def get_run(self, run_id: str) -> Run:
        return run_from_json(self._call("GET", "/runs/get", {"run_id": run_id})["run"])

    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body = {
            "run_id": run_id,
            "run_uuid": run_id,
            "status": RunStatus.parse(run_status).value if run_status is not None else None,
            "end_time": end_time,
            "run_name": run_name,
        }
        return run_info_from_json(self._call("POST", "/runs/update", body)["run_info"])

    def delete_run(self, run_id: str) -> None:
        self._call("POST", "/runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self._call("POST", "/runs/restore", {"run_id": run_id})

    # --- run data ----------------------------------------------------------------------------------
    def log_metric(self, run_id: str, metric: Metric) -> None:
        metric = validate_metric(metric)
        self._call("POST", "/runs/log-metric", {"run_id": run_id, "run_uuid": run_id, **_metric_json(metric)})

    def log_param(self, run_id: str, param: Param) -> None:
        body = {"run_id": run_id, "run_uuid": run_id, "key": param.key, "value": param.value}
        self._call("POST", "/runs/log-parameter", body)

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self._call("POST", "/runs/set-tag", {"run_id": run_id, "run_uuid": run_id, "key": tag.key, "value": tag.value})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call("POST", "/runs/delete-tag", {"run_id": run_id, "key": key})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        metrics, params, tags = validate_batch(metrics, params, tags)
        body = {
            "run_id": run_id,
            "metrics": [_metric_json(m) for m in metrics],
            "params": _pairs(params),
            "tags": _pairs(tags),
        }
        self._call("POST", "/runs/log-batch", body)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] = ()) -> None:
        items = []
        for item in datasets:
            ds = item.dataset
            dataset = _without_none(
                {
                    "name": ds.name,
                    "digest": ds.digest,
                    "source_type": ds.source_type,
                    "source": ds.source,
                    "schema": ds.schema,
                    "profile": ds.profile,
                }
            )
            items.append({"tags": _pairs(item.tags), "dataset": dataset})
        self._call("POST", "/runs/log-inputs", {"run_id": run_id, "datasets": items})

    def get_metric_history(
        self, run_id: str, metric_key: str, max_results: int | None = None, page_token: str | None = None
    ) -> PagedList[Metric]:
        """One page when ``max_results`` is given; otherwise every page, like the local stores."""
        metrics: list[Metric] = []
        token = page_token
        while True:
            body = {
                "run_id": run_id,
                "run_uuid": run_id,
                "metric_key": metric_key,
                "max_results": max_results,
                "page_token": token,
            }
            response = self._call("GET", "/metrics/get-history", body)
            metrics.extend(metric_from_json(m) for m in response.get("metrics", ()))
            token = response.get("next_page_token") or None
            if max_results is not None or token is None:
                return PagedList(metrics, token)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string,
            "run_view_type": ViewType.parse(run_view_type).name,
            "max_results": SEARCH_MAX_RESULTS_DEFAULT if max_results is None else max_results,
            "order_by": list(order_by or ()),
            "page_token": page_token,
        }
        response = self._call("POST", "/runs/search", body)
        return PagedList([run_from_json(r) for r in response.get("runs", ())], response.get("next_page_token") or None)
