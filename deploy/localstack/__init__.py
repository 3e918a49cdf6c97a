"""Local stack: real RabbitMQ, MongoDB, Elasticsearch and Prometheus on this machine, without Docker.

    python -m deploy.localstack up|down|status [--only rabbitmq,mongodb,elasticsearch,prometheus]
    python -m deploy.localstack up|down|status --cluster 3 [--only rabbitmq,mongodb,elasticsearch]

Ports come from the settings the services read (AMQP_URL, MONGODB_URL, ELASTICSEARCH_URL); data,
logs and the record of what ``up`` started live under STATE_DIR (default ``<project>/.local``).
Downloads are cached outside the clone in ``~/.cache/tubewatch`` (TUBEWATCH_CACHE_DIR overrides),
so a second clone does not download again.

* ``up`` reuses a healthy server already answering on a configured port; running it twice is
  harmless. What it starts is recorded in ``<state>/run/<server>.json`` (written before the
  readiness wait, so the record survives a crash of this script).
* ``down`` stops only what ``up`` started, and copes with stale records (process already gone).
* ``status`` prints one line per server; it exits 3 when a data server is down, or any server
  named with ``--only`` (Prometheus, which nothing else needs, does not count otherwise).

Cluster mode (``--cluster 3``) runs three-node RabbitMQ, MongoDB and Elasticsearch clusters beside
the single-node stack, on fixed ports of their own (``config``), each node with its own record;
``up`` writes the services' environment for them to ``<state>/cluster.env``. A plain ``down``
stops the clusters' nodes too.

Every server listens on 127.0.0.1 only. Elasticsearch refuses to run as root: it runs as the system
user ``tubewatch-es`` from a shared install in ``/opt/tubewatch`` with per-clone data under
``/var/lib/tubewatch/<hash of the state dir>``.

Modules:

* ``cli`` parses the command line and runs up/down/status over the selected servers;
* ``server`` holds the lifecycle every server shares (reuse, start, wait, stop, status line);
* ``rabbitmq``, ``mongodb``, ``elasticsearch``, ``prometheus`` each know how to install, start,
  check and stop their server; ``prometheus_config`` generates Prometheus's configuration;
* ``cluster`` is cluster mode's API (URLs, environment, find/kill/restart a node, wait until whole)
  over ``node_group`` (what the clusters share) and ``es_cluster``, ``mongo_cluster``,
  ``rabbit_cluster`` (each cluster's nodes and how they become one cluster);
* ``config`` reads the settings into endpoints and folders; ``records`` keeps what ``up`` started;
  ``processes`` inspects and stops processes and ports; ``downloads`` fetches, verifies and
  installs what the servers need.
"""
