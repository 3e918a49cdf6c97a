"""The fetcher service: an aiohttp app serving health and metrics, whose background task leads and polls.

``create_app`` wires the parts together: the YouTube gateway and key pool, the lease and the
leader loop, the scheduler with one work item per searched query (the query roster keeps them in
step with the sources), the walk and the delivery of new videos; a second scheduler beside it on
the units pool, with one work item per followed channel (the channel roster keeps them in step
with the sources and auto-follow) and the channel delivery; and the sources watch that gives
both rosters every change of the sources in MongoDB. At start SEARCH_QUERIES and FOLLOW_CHANNELS
seed the sources as SOURCES_FROM_ENV says (services/common/sources.py). Each part receives the
values it uses, not the settings.

With WEBSUB_CALLBACK_URL set, WebSub push too: every process serves the push endpoint and
forwards what it receives to the notice queue (websub_routes.py); the leader, while it leads,
subscribes the followed channels and confirms and publishes what the notices name
(websub_leader.py), and the channel scheduler reads a channel whose push works less often (at
least every MAX_CHANNEL_INTERVAL_SECONDS).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.common.clients import SERVICE_MONGO_TIMEOUT_MS, MongoClient, open_amqp, open_mongo
from services.common.service_app import add_readiness_check, add_service_routes
from services.common.sources import SeedRequest, seed_from_environment
from services.common.topology import QueueNames, declare_at_start, declare_index_queue
from services.fetcher.budget import Budget, BudgetPlanner, PlanBounds
from services.fetcher.channel_delivery import ChannelDelivery
from services.fetcher.channel_roster import ChannelRoster, config_digest
from services.fetcher.clock import Clock, SystemClock
from services.fetcher.delivery import Delivery
from services.fetcher.followed_channel import ChannelParts
from services.fetcher.follows import ChannelFollows
from services.fetcher.gateway import YouTubeGateway
from services.fetcher.health import health_body, readiness
from services.fetcher.keys import KeyPool
from services.fetcher.leader import Leader
from services.fetcher.lease import LeaderLease, make_holder_id
from services.fetcher.metrics import FetcherMetrics
from services.fetcher.publisher import VideoPublisher
from services.fetcher.query_roster import QueryRoster
from services.fetcher.scheduler import Scheduler, planned_interval
from services.fetcher.search_query import SearchPolicy, SearchQueryParts
from services.fetcher.settings import Settings
from services.fetcher.sources_watch import SourcesWatch
from services.fetcher.store import FetcherStore
from services.fetcher.units_budget import UnitsBudget, UnitsGate, UnitsPlanner
from services.fetcher.walk import Walker
from services.fetcher.websub_confirm import KnownSink, PushConfirmer
from services.fetcher.websub_leader import WebSubLeaderWork
from services.fetcher.websub_notices import NoticeForwarder, declare_notice_queue, notice_queue_name
from services.fetcher.websub_routes import CLIENT_MAX_SIZE, LIMITS, RECEIVER, PushReceiver, add_push_routes
from services.fetcher.websub_store import WebSubStore
from services.fetcher.websub_subscriptions import WebSubSubscriptions
from services.fetcher.youtube_client import YouTubeClient

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
AMQP = web.AppKey("amqp", AbstractRobustConnection)
HTTP = web.AppKey("http", aiohttp.ClientSession)
MONGO: web.AppKey[MongoClient] = web.AppKey("mongo")
LEADER = web.AppKey("leader", Leader)
SCHEDULER = web.AppKey("scheduler", Scheduler)
# The followed channels.
CHANNELS = web.AppKey("channels", ChannelRoster)
QUERIES = web.AppKey("queries", QueryRoster)
WEBSUB = web.AppKey("websub", WebSubLeaderWork)

# How long a graceful stop waits for the cycle in hand before cancelling it.
STOP_GRACE_SECONDS = 60


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    # The push endpoint may be exposed to the internet: the API's limits on what a client may send.
    app = web.Application(middlewares=[_health_details], client_max_size=CLIENT_MAX_SIZE, handler_args=LIMITS)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    registry = CollectorRegistry()
    add_service_routes(app, registry)
    if settings.websub_callback_url is not None:
        add_push_routes(app)
    # RabbitMQ first: its declarations may refuse the start (_amqp_ctx).
    app.cleanup_ctx.extend([_amqp_ctx, _http_ctx, _mongo_ctx, _poller_ctx(registry)])
    add_readiness_check(app, "mongodb", lambda: _ping_mongo(app))
    add_readiness_check(app, "rabbitmq", lambda: _amqp_state(app))
    add_readiness_check(app, "poller", lambda: _poller_state(app))
    return app


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    # No proxies from the environment: a proxy would see the key header in the clear.
    async with aiohttp.ClientSession(raise_for_status=False, trust_env=False) as session:
        app[HTTP] = session
        yield


async def _mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_mongo(app[SETTINGS].mongodb_url, SERVICE_MONGO_TIMEOUT_MS) as client:
        app[MONGO] = client
        yield


async def _amqp_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    names = QueueNames(settings.amqp_exchange, settings.amqp_queue, settings.amqp_queue_type)

    async def declare(channel: AbstractChannel) -> None:
        await declare_index_queue(channel, names)
        if settings.websub_callback_url is not None:
            await declare_notice_queue(channel, notice_queue_name(settings.amqp_exchange), settings.amqp_queue_type)

    async with open_amqp(settings.amqp_url, "fetcher") as connection:
        # At start, before any other client opens: a queue RabbitMQ holds with another type
        # (AMQP_QUEUE_TYPE changed) stops the start with one line.
        await declare_at_start(connection, declare)
        app[AMQP] = connection
        yield


@dataclass(frozen=True)
class WebSubWiring:
    """What the leader's WebSub side needs beyond the polling parts (WEBSUB_CALLBACK_URL set)."""

    store: WebSubStore
    session: aiohttp.ClientSession
    amqp: Callable[[], AbstractRobustConnection]
    queue_name: str
    callback_base: str


def _build(
    settings: Settings,
    *,
    clock: Clock,
    client: YouTubeClient,
    store: FetcherStore,
    publisher: VideoPublisher,
    metrics: FetcherMetrics,
    db: AsyncDatabase[dict[str, Any]],
    websub: WebSubWiring | None = None,
) -> tuple[Leader, QueryRoster, ChannelRoster, WebSubLeaderWork | None]:
    """The leader and everything it runs, each part given the values it uses."""
    pool = KeyPool(
        settings.key_entries,
        settings.youtube_search_calls_per_day,
        units_per_day=settings.youtube_units_per_day,
        units_reserve=settings.units_reserve_for_enrichment,
    )
    lease = LeaderLease(store.lease_collection, make_holder_id(), settings.lease_ttl_seconds)
    gateway = YouTubeGateway(
        client=client,
        pool=pool,
        lease=lease,
        store=store,
        metrics=metrics,
        clock=clock,
        retries=settings.youtube_retries,
        retry_max_seconds=settings.youtube_retry_max_seconds,
    )
    planner = BudgetPlanner(
        PlanBounds(
            poll_interval=settings.poll_interval_seconds,
            max_query_interval=settings.max_query_interval_seconds,
            max_pages_per_cycle=settings.max_pages_per_cycle,
            scheduling=settings.query_scheduling,
        )
    )
    budget = Budget(planner, pool=pool, store=store, lease=lease, metrics=metrics)
    policy = SearchPolicy(
        max_pages_per_cycle=settings.max_pages_per_cycle,
        late_sweep_every=settings.late_sweep_every,
        overlap_seconds=settings.overlap_seconds,
        initial_lookback_seconds=settings.initial_lookback_seconds,
    )
    parts = SearchQueryParts(
        walker=Walker(gateway=gateway, clock=clock, metrics=metrics),
        delivery=Delivery(gateway=gateway, publisher=publisher, lease=lease, clock=clock, metrics=metrics),
        gateway=gateway,
        store=store,
        pool=pool,
        lease=lease,
        clock=clock,
        metrics=metrics,
    )
    queries = QueryRoster(policy=policy, parts=parts)
    scheduler = Scheduler(clock=clock, pool=pool, budget=budget, metrics=metrics, hooks=queries)
    # Always, with auto-follow off too (top_n 0): a channel may be followed through the admin API
    # at any time, and the saved set is what /api/v1/status lists.
    follows = ChannelFollows(
        explicit=(),  # the sources' explicit channels, given at leadership start
        db=db,
        top_n=settings.auto_follow_channels,
        window=timedelta(days=settings.auto_follow_window_days),
        clock=clock,
        fence=lease.check,
    )
    channel_parts = ChannelParts(
        gateway=gateway,
        delivery=ChannelDelivery(gateway=gateway, publisher=publisher, lease=lease, clock=clock, metrics=metrics),
        store=store,
        pool=pool,
        lease=lease,
        clock=clock,
        metrics=metrics,
        max_pages=settings.max_pages_per_cycle,
        lookback_seconds=settings.initial_lookback_seconds,
        config_digest=config_digest(settings.follow_channels),
    )
    roster = ChannelRoster(follows=follows, parts=channel_parts)
    units_planner = UnitsPlanner(
        PlanBounds(
            poll_interval=settings.min_channel_interval_seconds,
            max_query_interval=settings.max_channel_interval_seconds,
            max_pages_per_cycle=settings.max_pages_per_cycle,
        )
    )
    units_budget = UnitsBudget(
        units_planner,
        pool=pool,
        store=store,
        lease=lease,
        metrics=metrics,
        reserve=settings.units_reserve_for_enrichment,
    )
    wakes: list[Callable[[], None]] = []  # the leader's, once built

    def wake_schedulers() -> None:
        for wake in wakes:
            wake()

    push_work = None
    if websub is not None:
        subscriptions = WebSubSubscriptions(
            store=websub.store,
            session=websub.session,
            followed=lambda: [c.channel_id for c in roster.channels if c.readable],
            clock=clock,
            metrics=metrics,
            hub_url=settings.websub_hub_url,
            callback_base=websub.callback_base,
            lease_seconds=settings.websub_lease_seconds,
            on_push_change=wake_schedulers,
        )
        confirmer = PushConfirmer(
            gateway=gateway,
            publisher=publisher,
            lease=lease,
            clock=clock,
            metrics=metrics,
            followed=lambda: _loaded_channels(roster),
            max_confirms_per_hour=settings.websub_max_confirms_per_channel_hour,
        )
        push_work = WebSubLeaderWork(
            amqp=websub.amqp,
            queue_name=websub.queue_name,
            subscriptions=subscriptions,
            confirmer=confirmer,
            queue_type=settings.amqp_queue_type,
        )
    channel_scheduler = Scheduler(
        clock=clock,
        pool=UnitsGate(pool),
        budget=units_budget,
        metrics=metrics,
        hooks=roster,
        interval=(
            push_work.subscriptions.stretched_interval(settings.max_channel_interval_seconds)
            if push_work is not None
            else planned_interval
        ),
    )
    leader = Leader(
        lease=lease,
        scheduler=scheduler,
        pool=pool,
        store=store,
        clock=clock,
        metrics=metrics,
        poll_interval_seconds=settings.poll_interval_seconds,
        others=[channel_scheduler],
        sources=SourcesWatch(db=db, followers=[queries, roster], clock=clock, metrics=metrics),
        on_role=[push_work.on_role] if push_work is not None else (),
    )
    wakes.append(leader.wake)
    return leader, queries, roster, push_work


def _loaded_channels(roster: ChannelRoster) -> dict[str, KnownSink]:
    return {c.channel_id: c for c in roster.channels if c.loaded is not None and c.readable}


def _poller_ctx(registry: CollectorRegistry) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        store = FetcherStore(app[MONGO][settings.mongodb_database])
        await store.ensure_indexes()
        channel = await app[AMQP].channel(publisher_confirms=True)
        publisher = await VideoPublisher.declare(
            channel, QueueNames(settings.amqp_exchange, settings.amqp_queue, settings.amqp_queue_type)
        )
        client = YouTubeClient(app[HTTP], settings.youtube_api_url, settings.youtube_request_timeout_seconds)
        metrics = FetcherMetrics(registry)
        db = app[MONGO][settings.mongodb_database]
        seed = SeedRequest(
            queries=settings.search_queries,
            channels=settings.follow_channels,
            mode=settings.sources_from_env,
            seeded_by="fetcher",
        )
        await seed_from_environment(db, seed, app[CLOCK].now())
        websub, forwarding = None, None
        if settings.websub_callback_url is not None:
            websub_store = WebSubStore(db)
            await websub_store.ensure_indexes()
            queue_name = notice_queue_name(settings.amqp_exchange)
            forwarding = await app[AMQP].channel(publisher_confirms=True)
            app[RECEIVER] = PushReceiver(
                store=websub_store,
                forwarder=await NoticeForwarder.declare(forwarding, queue_name, settings.amqp_queue_type),
                clock=app[CLOCK],
                metrics=metrics,
            )
            websub = WebSubWiring(
                store=websub_store,
                session=app[HTTP],
                amqp=lambda: app[AMQP],
                queue_name=queue_name,
                callback_base=settings.websub_callback_url,
            )
        leader, queries, roster, push_work = _build(
            settings,
            clock=app[CLOCK],
            client=client,
            store=store,
            publisher=publisher,
            metrics=metrics,
            db=db,
            websub=websub,
        )
        app[QUERIES] = queries
        app[CHANNELS] = roster
        app[LEADER] = leader
        app[SCHEDULER] = leader.scheduler
        if push_work is not None:
            app[WEBSUB] = push_work
        task = asyncio.create_task(leader.run(), name="poller")
        yield
        leader.stop()  # SIGTERM: finish the cycle in hand, release the lease
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if push_work is not None:
            await push_work.stop()
        if forwarding is not None:
            await forwarding.close()
        await channel.close()

    return ctx


@web.middleware
async def _health_details(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The shared /healthz answer, plus the fetcher's role, quota budget and parked keys."""
    response = await handler(request)
    if request.path != "/healthz" or response.status != 200 or not isinstance(response, web.Response):
        return response
    body = json.loads(response.body) if isinstance(response.body, bytes) else {}
    leader, scheduler = request.app.get(LEADER), request.app.get(SCHEDULER)
    if leader is not None and scheduler is not None:
        body.update(health_body(leader, scheduler, request.app[CLOCK].now()))
        roster = request.app.get(CHANNELS)
        if roster is not None and leader.role == "leader":
            body.update(roster.health())
        if leader.sources is not None and leader.role == "leader":
            body.update(leader.sources.health())
        push_work = request.app.get(WEBSUB)
        if push_work is not None and leader.role == "leader":
            body.update(push_work.subscriptions.health(request.app[CLOCK].now()))
    else:
        body["role"] = "starting"
    return web.json_response(body)


async def _ping_mongo(app: web.Application) -> tuple[bool, str]:
    await app[MONGO].admin.command("ping")
    return True, "ok"


async def _amqp_state(app: web.Application) -> tuple[bool, str]:
    connection = app[AMQP]
    return (not connection.is_closed), ("connected" if not connection.is_closed else "disconnected")


async def _poller_state(app: web.Application) -> tuple[bool, str]:
    return readiness(app.get(LEADER))
