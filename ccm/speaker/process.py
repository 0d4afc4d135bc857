"""The speaker process on one node: watch, plan, announce, report.

One level-triggered loop: any change the plan reads (a Service, a pool, an advertisement, a
node's labels, an endpoint, the set of live speakers, our own liveness) marks the state dirty;
`reconcile` brings the plan up to date and applies the difference to the announcers (other
speakers' routine Lease renewals change nothing and re-plan nothing). A Service or endpoint
change re-plans only that Service's addresses (`planner.Planner`) and applies only the
addresses whose duty changed, so its cost does not grow with the number of Services. Another
speaker joining or leaving re-elects only the addresses whose owner can change (about this
node's share) without reading the Services; any other
change (pools, advertisements, peers, Node labels, our own liveness) and any failed apply
re-plan and re-apply everything. The only periodic API writes are this node's Lease renewals;
Services are written (the `vipam.io/announcing-node` annotation, a NodeAssigned Event) only
when their owner changes.

L2 handovers between live speakers are make-before-break: when the plan gives one of our
addresses to another live node (it rejoined and wins the address back, an endpoint moved, or
we stop cleanly), we keep answering for it until the new owner's announcement is heard on the
segment (`Announcer.wait_claimed`), at most `2 * lease_duration + 1` s. The election stays a pure
function of the Leases and the cluster's objects, so every speaker still agrees without any
per-address state; only the moment the old owner lets go waits for the new one. When *we*
are the problem (our Lease is not renewed) we let go at once: fencing never waits. Taking an
address over from a node whose Lease *expired* is the other way round: we first wait until
that node's kernel has stopped answering for it (``fencing``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
from collections.abc import Coroutine
from collections.abc import Set as AbstractSet
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary

from ccm.contract import names, views
from ccm.contract.models import SecretKeyRef
from ccm.health import probes
from ccm.health.numbers import rfc3339
from ccm.kube.client import JSON, ApiError, KubeClient, user_agent
from ccm.kube.events import EventRecorder
from ccm.kube.informer import Informer
from ccm.kube.resources import (
    BGPADVERTISEMENTS,
    BGPPEERS,
    ENDPOINTSLICES,
    IPPOOLS,
    L2ADVERTISEMENTS,
    NODES,
    SECRETS,
    SERVICES,
)
from ccm.kube.transform import drop_managed_fields, namespace_for_cache
from ccm.speaker import fencing
from ccm.speaker.bgp.config import Peer
from ccm.speaker.bgp.speaker import BGPSpeaker
from ccm.speaker.election import weight
from ccm.speaker.l2.announcer import Announcer, L2Announcer, LoggingAnnouncer
from ccm.speaker.membership import Membership, MembershipTiming
from ccm.speaker.plan import ClusterView, Invalid, L2Duty, PeerChoice, Plan, make_plan
from ccm.speaker.planner import Changes, Planner
from ccm.speaker.settings import SpeakerSettings

log = logging.getLogger(__name__)


def default_interface(ip: str) -> str:
    """The interface the kernel would use to reach `ip` (the segment the address lives on)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        routes = ipr.route("get", dst=ip)
        index = routes[0].get_attr("RTA_OIF")
        return str(ipr.get_links(index)[0].get_attr("IFLA_IFNAME"))


class Speaker:
    def __init__(self, settings: SpeakerSettings, client: KubeClient | None = None) -> None:
        self.settings = settings
        self.node = settings.node_name
        self._client = client
        self.registry = CollectorRegistry()
        self.announced_gauge = Gauge(
            "vipam_speaker_announced_addresses", "Addresses this node announces", ["mode"],
            registry=self.registry,
        )
        self.reconciles = Counter(
            "vipam_speaker_reconciles", "Plan recomputations", registry=self.registry
        )
        self.plan_cpu = Summary(
            "vipam_speaker_plan_cpu_seconds",
            "CPU time of each plan on the reconcile thread; kind: incremental (Services and "
            "endpoints that changed), live (a speaker joined or left: the addresses whose "
            "owner can change elected again) or full (every Service)", ["kind"],
            registry=self.registry,
        )
        self.announce_errors = Counter(
            "vipam_speaker_announce_errors", "Failed announcements", ["mode"],
            registry=self.registry,
        )
        # past its lease duration without the API server, a speaker has stopped announcing
        self.api_contact = probes.ApiContact(settings.lease_duration, self.registry)
        self.dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.l2_owned: dict[str, str] = {}  # ip -> service key
        self.bgp: BGPSpeaker | None = None  # started when a BGPAdvertisement first needs it
        self.bgp_peers_key: tuple[Any, ...] = ()
        self.planner = Planner(self.node)
        self.plan = Plan()
        # what failed and is tried again at the next reconcile (a full one retries everything)
        self._l2_retry: set[str] = set()  # addresses whose announcement failed
        self._bgp_retry: set[str] = set()
        self._annotate_retry: set[str] = set()  # Services whose annotation write failed
        self._bgp_everything = True  # routes were all withdrawn: announce every one again
        self.last_errors: list[dict[str, Any]] = []
        # (kind, name) -> the reason reported: refused by the models / unusable here (Secret)
        self._invalid: dict[tuple[str, str], str] = {}
        self._unusable: dict[tuple[str, str], str] = {}
        self._heartbeat = time.monotonic()
        self.ready_event = asyncio.Event()
        self._stopped = False
        self._handovers: dict[str, asyncio.Task[None]] = {}  # ip -> wait for the new owner
        self._l2_lock = asyncio.Lock()  # reconcile and finished handovers both withdraw
        self._renewed = asyncio.Event()  # set after each successful Lease renewal
        # a rejoining owner announces once settled, a lease duration after its first renewal
        self.handover_timeout = 2 * settings.lease_duration + 1.0

    @property
    def client(self) -> KubeClient:
        assert self._client is not None
        return self._client

    def _live_changed(self) -> None:
        """The set of live speakers changed: the planner sees the new set itself and elects
        again the addresses whose owner can change (a full plan only if our own liveness
        changed)."""
        self.dirty.set()

    def _mark_everything(self, *_: object) -> None:
        """A change every address may depend on: the next plan is a full one."""
        self.planner.everything_changed()
        self.dirty.set()

    def _service_changed(self, key: str, old: JSON | None, new: JSON | None) -> None:
        self.planner.service_changed(key)
        self.dirty.set()

    def _slice_changed(self, key: str, old: JSON | None, new: JSON | None) -> None:
        self.planner.slice_changed(key, old, new)
        self.dirty.set()

    def _node_changed(self, key: str, old: JSON | None, new: JSON | None) -> None:
        if old is None or new is None or views.labels_of(old) != views.labels_of(new):
            self._mark_everything()

    async def start(self) -> None:
        s = self.settings
        if self._client is None:
            self._client = await KubeClient.connect(
                s.kubeconfig, s.context, qps=s.qps, burst=s.burst,
                user_agent=user_agent("speaker", self.node),
            )
        self.api_contact.attach(self.client)
        self.announcer = self._make_announcer()
        self.membership = Membership(
            self.client, namespace=s.namespace, node=self.node,
            timing=MembershipTiming(s.renew_interval, s.lease_duration, s.fence_after),
            on_change=self._live_changed, on_renewed=lambda started: self._renewed.set(),
        )
        self.recorder = EventRecorder(self.client, "vipam-speaker", host=self.node)
        # the caches keep only what the plan reads (a Node is read for its labels only), and
        # a Node re-plans only when its labels change: kubelets update their Node's status
        # all the time, and a Node change re-plans every Service. A Service or EndpointSlice
        # change re-plans that one Service; the others every Service.
        handlers = {SERVICES.plural: self._service_changed,
                    ENDPOINTSLICES.plural: self._slice_changed}
        self.informers = {
            res.plural: Informer(self.client, res, handlers.get(res.plural, self._mark_everything),
                                 transform=drop_managed_fields)
            for res in (SERVICES, IPPOOLS, L2ADVERTISEMENTS, BGPADVERTISEMENTS, BGPPEERS,
                        ENDPOINTSLICES)
        }
        self.informers[NODES.plural] = Informer(
            self.client, NODES, self._node_changed, transform=namespace_for_cache)
        if isinstance(self.announcer, L2Announcer):
            with contextlib.suppress(Exception):
                await self.announcer.reclaim()  # addresses a killed predecessor left behind
        for name, informer in self.informers.items():
            self._spawn(informer.run(), f"informer-{name}")
        self._spawn(self.membership.informer.run(), "informer-leases")
        await asyncio.gather(*(i.synced.wait() for i in self.informers.values()),
                             self.membership.informer.synced.wait())
        self._spawn(self.membership.renew_forever(), "lease-renew")
        self._spawn(self.membership.watch_expiry(), "lease-expiry")
        self._spawn(self._loop(), "reconcile")
        if isinstance(self.announcer, L2Announcer) and self.settings.address_lifetime:
            self._spawn(self._refresh_lifetimes(), "address-lifetime")
        self._spawn(self._heartbeat_loop(), "heartbeat")
        self.ready_event.set()

    def _make_announcer(self) -> Announcer:
        mode = self.settings.announcer
        if mode == "auto":
            mode = "kernel" if os.geteuid() == 0 else "log"
        if mode == "kernel":
            return L2Announcer(repeats=self.settings.garp_repeats,
                               interval=self.settings.garp_interval,
                               address_lifetime=self.settings.address_lifetime or None)
        return LoggingAnnouncer(log)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def stop(self, *, crash: bool = False) -> None:
        """Clean stop: withdraw everything and release the Lease. `crash` skips both (tests).

        Idempotent: stopping a stopped speaker does nothing."""
        if self._stopped:
            return
        self._stopped = True
        log.info("stopping%s", " (crash)" if crash else "")
        tasks = [*self._tasks, *self._handovers.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            # a cancel can be absorbed: Python 3.11's wait_for returns a result that raced
            # it (ExaBGP connecting just as we stop), and the reconcile loop then waits on
            # for the next change; cancel again until the task has really ended
            while not task.done():
                await asyncio.wait([task], timeout=1.0)
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._handovers.clear()
        if not crash and hasattr(self, "membership"):
            await self._hand_over_and_leave()
        elif not crash:
            await self._withdraw_everything()
        if hasattr(self, "recorder"):
            await self.recorder.stop()  # write the Events still queued, then close the client
        if self._client is not None:
            await self._client.close()

    async def _hand_over_and_leave(self) -> None:
        """Clean stop, make-before-break: release the Lease so that the other nodes take our
        addresses over at once, keep answering until each new owner is heard, then withdraw.
        An address that no other node will take is withdrawn without waiting."""
        heirs: list[str] = []
        if self.membership.is_live() and self.membership.settled():
            others = self.membership.live_nodes() - {self.node}
            after = make_plan(self.view(), self.node, frozenset(others))
            heirs = [ip for ip in self.l2_owned
                     if (duty := after.l2.get(ip)) is not None and duty.owner is not None]
        log.info("stopping: releasing the Lease, handing %d address(es) over", len(heirs))
        # hold each address until its heir is heard, however long the heir takes to become
        # ready (at most the handover timeout), keeping it alive meanwhile; should we be
        # killed now, it outlives us by at most one lifetime, beside an heir that has it
        keeper = (asyncio.get_running_loop().create_task(self._keep_alive_while_leaving())
                  if heirs else None)
        try:
            await self.membership.release()
            if heirs:
                claimed = await asyncio.gather(*(self._let_go_when_claimed(ip) for ip in heirs),
                                               return_exceptions=True)
                log.info("stopping: %d of %d addresses taken over before we withdrew",
                         sum(result is True for result in claimed), len(heirs))
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
        await self._withdraw_everything()

    async def _let_go_when_claimed(self, ip: str) -> bool:
        """Withdraw ``ip`` the moment its heir is heard (or the handover times out)."""
        try:
            return await self.announcer.wait_claimed(ip, self.handover_timeout)
        finally:
            await self.announcer.withdraw(ip)
            self.l2_owned.pop(ip, None)

    async def _keep_alive_while_leaving(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.announcer.refresh()
            await asyncio.sleep(self.settings.address_lifetime / 4 or 1.0)

    async def _withdraw_everything(self) -> None:
        with contextlib.suppress(Exception):
            await self.announcer.withdraw_all()
        self.l2_owned.clear()
        if self.bgp is not None:
            with contextlib.suppress(Exception):
                await self.bgp.stop()
            self.bgp = None

    # -- the loop --------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await self.dirty.wait()
            # coalesce a burst of changes (a thousand Services created at once) into one plan
            await asyncio.sleep(self.settings.coalesce_seconds)
            self.dirty.clear()
            try:
                await self.reconcile()
            except Exception as exc:  # keep serving; the next change retries
                log.exception("speaker reconcile failed")
                self._note_error("reconcile", str(exc))
                await asyncio.sleep(0.5)
                self.dirty.set()

    def view(self) -> ClusterView:
        i = self.informers
        return ClusterView(
            services=i["services"].cache, pools=i["ippools"].cache,
            l2_advertisements=i["l2advertisements"].cache,
            bgp_advertisements=i["bgpadvertisements"].cache, peers=i["bgppeers"].cache,
            nodes=i["nodes"].cache, endpoint_slices=i["endpointslices"].cache,
            serve_unclassed=self.settings.serve_unclassed,
        )

    async def reconcile(self) -> None:
        """Re-plan what changed and apply it. Should planning or applying fail, the planner
        is marked for a full rebuild: the next reconcile re-applies every address."""
        self.reconciles.inc()
        ready = self.membership.is_live() and self.membership.settled()
        live = self.membership.live_nodes() if ready else frozenset()
        started = time.thread_time()
        try:
            changes = self.planner.update(self.view(), live)
        except BaseException:
            self.planner.everything_changed()
            raise
        self.plan_cpu.labels(kind=changes.kind).observe(
            time.thread_time() - started)
        plan = self.plan = self.planner.plan
        try:
            self._report_invalid(plan.invalid)
            await self._apply_l2(plan, changes)
            await self._apply_bgp(plan, changes)
        except BaseException:
            self.planner.everything_changed()
            raise
        self.announced_gauge.labels(mode="l2").set(len(self.l2_owned))
        self.announced_gauge.labels(mode="bgp").set(len(plan.bgp))

    async def _apply_l2(self, plan: Plan, changes: Changes) -> None:
        """Announce, hand over or withdraw the changed addresses (all of them after a full
        plan), then write the announcing-node annotations that may have changed."""
        scope: AbstractSet[str]
        services: AbstractSet[str]
        if changes.full:
            scope = plan.l2.keys() | self.l2_owned.keys()
            services = {*self.planner.l2_services(), *self._annotate_retry}
        else:
            scope = changes.addresses | self._l2_retry
            services = changes.services | self._annotate_retry
        self._l2_retry = set()
        mine = {ip: duty for ip in scope if (duty := plan.l2.get(ip)) is not None and duty.mine}
        async with self._l2_lock:
            live = self.membership.is_live()
            for ip in [ip for ip in scope if ip in self.l2_owned]:
                if ip in mine:
                    self._cancel_handover(ip)  # it came back to us: keep it
                    continue
                duty = plan.l2.get(ip)
                if live and duty is not None and duty.owner is not None:
                    if ip not in self._handovers:  # make before break
                        log.info("handing %s over to %s: answering until it is heard", ip,
                                 duty.owner)
                        self._handovers[ip] = asyncio.get_running_loop().create_task(
                            self._hand_over(ip, duty.owner), name=f"handover-{ip}")
                    continue
                self._cancel_handover(ip)  # nobody takes it, or we are fenced: let go now
                await self.announcer.withdraw(ip)
                del self.l2_owned[ip]
            new = {ip: duty for ip, duty in mine.items() if ip not in self.l2_owned}
            interfaces = {ip: await self._interface(duty) for ip, duty in new.items()}
            await self._wait_for_the_dead(interfaces)
            for ip, duty in new.items():
                try:
                    interface = interfaces[ip]
                    if isinstance(interface, Exception):
                        raise interface
                    await self.announcer.announce(ip, interface)
                except Exception as exc:
                    self._l2_retry.add(ip)
                    self.announce_errors.labels(mode="l2").inc()
                    self._note_error(",".join(duty.services), f"announce {ip}: {exc}")
                    for service in duty.services:
                        await self._event(service, "Warning", "AnnounceFailed",
                                          f"node {self.node} could not announce {ip}: {exc}")
                    continue
                self.l2_owned[ip] = ",".join(duty.services)
        await self._write_announcing_nodes(plan, services)

    async def _interface(self, duty: L2Duty) -> str | Exception:
        """The interface to announce on: the advertisement's, else the one routing the VIP."""
        if duty.interfaces:
            return duty.interfaces[0]
        if isinstance(self.announcer, LoggingAnnouncer):
            return "log"
        try:
            return await asyncio.to_thread(default_interface, duty.ip)
        except Exception as exc:
            return exc

    async def _wait_for_the_dead(self, interfaces: dict[str, str | Exception]) -> None:
        """Before taking addresses over from a node whose Lease expired, wait until nobody
        answers for them any more (its kernel lifetime ran out, ``fencing``): all at once,
        each at most until that node's addresses must have expired."""
        lifetime = self.settings.address_lifetime
        if not lifetime or not interfaces:
            return
        dead = self.membership.recently_expired(
            fencing.silence_deadline(0.0, lifetime))
        if not dead:
            return
        checks = []
        for ip, interface in interfaces.items():
            mine = weight(ip, self.node)
            # an expired node that outranks us for this address owned it before us
            previous = [at for node, at in dead.items() if weight(ip, node) > mine]
            if previous and isinstance(interface, str):
                deadline = fencing.silence_deadline(max(previous), lifetime)
                checks.append(self._silent_or_late(ip, interface, deadline))
        if checks:
            await asyncio.gather(*checks)

    async def _silent_or_late(self, ip: str, interface: str, deadline: float) -> None:
        started = time.monotonic()
        if not await self.announcer.wait_silent(ip, interface, deadline):
            log.warning("%s still answered by another host %.2f s after its owner's Lease "
                        "expired; announcing anyway", ip, time.monotonic() - started)
        elif time.monotonic() - started > fencing.PROBE_WAIT * 2:
            log.info("%s: waited %.2f s for the dead owner's address to expire", ip,
                     time.monotonic() - started)

    async def _hand_over(self, ip: str, successor: str) -> None:
        """Keep ``ip`` until ``successor`` (or anyone) claims it on the segment, then let go."""
        claimed = await self.announcer.wait_claimed(ip, self.handover_timeout)
        async with self._l2_lock:
            if self._handovers.get(ip) is not asyncio.current_task():
                return  # reconcile took over the decision meanwhile
            del self._handovers[ip]
            duty = self.plan.l2.get(ip)
            if duty is not None and duty.owner == self.node:
                return  # ours again
            if ip in self.l2_owned:
                await self.announcer.withdraw(ip)
                del self.l2_owned[ip]
        if claimed:
            log.info("handed %s over to %s", ip, successor)
        else:
            log.warning("%s not claimed by %s within %.1f s; withdrawn anyway", ip, successor,
                        self.handover_timeout)

    def _cancel_handover(self, ip: str) -> None:
        task = self._handovers.pop(ip, None)
        if task is not None:
            task.cancel()

    async def _write_announcing_nodes(self, plan: Plan, services: AbstractSet[str]) -> None:
        """The owner of a Service's first address records every owner in the annotation
        (of ``services``: those whose owners or annotation may have changed)."""
        writes: list[Coroutine[None, None, None]] = []
        for key in services:
            ips = self.planner.l2_addresses(key)
            svc = self.informers["services"].cache.get(key)
            if not ips or svc is None:
                self._annotate_retry.discard(key)
                continue
            first = next((ip for ip in views.ingress_ips(views.service(svc)) if ip in ips), ips[0])
            if not plan.l2[first].mine:
                self._annotate_retry.discard(key)
                continue
            value = ",".join(sorted({o for ip in ips if (o := plan.l2[ip].owner)}))
            if views.annotations_of(svc).get(names.ANN_ANNOUNCING_NODE) != value:
                writes.append(self._annotate(key, svc, value,
                                             [ip for ip in ips if plan.l2[ip].mine]))
            else:
                self._annotate_retry.discard(key)
        limit = asyncio.Semaphore(16)

        async def bounded(write: Coroutine[None, None, None]) -> None:
            async with limit:
                await write

        await asyncio.gather(*(bounded(w) for w in writes))

    async def _annotate(self, key: str, svc: JSON, value: str, ips: list[str]) -> None:
        namespace, name = key.split("/", 1)
        try:
            await self.client.patch(
                SERVICES, namespace, name,
                {"metadata": {"annotations": {names.ANN_ANNOUNCING_NODE: value}}},
            )
        except ApiError as exc:
            self._note_error(key, f"annotate: {exc}")
            self._annotate_retry.add(key)
            return
        self._annotate_retry.discard(key)
        await self.recorder.record(
            svc, "Normal", names.REASON_NODE_ASSIGNED,
            f"{', '.join(ips)} announced from node {self.node}",
        )

    async def _apply_bgp(self, plan: Plan, changes: Changes) -> None:
        """Announce or withdraw the changed routes; every route after a full plan, a new peer
        set or a withdrawal of everything."""
        if not self.settings.bgp:
            return
        if not plan.bgp and self.bgp is None:
            return
        peers = await self._peers(plan.peers)
        if not peers or not plan.bgp:
            if self.bgp is not None:
                await self.bgp.withdraw_all()
                self._bgp_everything = True
            if not peers:
                return
        everything = changes.full or self._bgp_everything
        key = tuple(peers)
        if self.bgp is None:
            self.bgp = BGPSpeaker(router_id=self.settings.bgp_router_id,
                                  workdir=self.settings.bgp_workdir)
            await self.bgp.start(peers)
            self.bgp_peers_key, everything = key, True
        elif key != self.bgp_peers_key:
            await self.bgp.set_peers(peers)
            self.bgp_peers_key, everything = key, True
        self._bgp_everything = False
        bgp = self.bgp
        names_to_address = {choice.name: choice.spec.address for choice in plan.peers}
        if everything:
            scope: AbstractSet[str] = plan.bgp.keys()
            for prefix in list(bgp.announced()):
                ip = prefix.split("/", 1)[0]
                if ip not in plan.bgp:
                    await bgp.withdraw(prefix)
        else:
            scope = changes.addresses | self._bgp_retry
            for ip in scope:
                if ip not in plan.bgp:
                    await bgp.withdraw(ip)  # a no-op unless announced
        self._bgp_retry = set()
        families = {name: ":" in address for name, address in names_to_address.items()}
        for ip in list(scope):
            duty = plan.bgp.get(ip)
            if duty is None:
                continue
            # next hop "self" is only right on a session of the route's own family, so each
            # route goes to the peers of its family (peer over IPv6 to announce IPv6 VIPs)
            v6 = ":" in ip
            wanted = [n for n in (duty.peers or tuple(names_to_address)) if n in families]
            targets = [names_to_address[n] for n in wanted if families[n] == v6]
            if not targets:
                await bgp.withdraw(ip)  # a no-op unless announced
                continue
            try:
                await bgp.announce(
                    ip, communities=duty.communities, local_pref=duty.local_pref, peers=targets
                )
            except Exception as exc:
                self._bgp_retry.add(ip)
                self.announce_errors.labels(mode="bgp").inc()
                for service in duty.services:
                    await self._event(service, "Warning", "AnnounceFailed",
                                      f"node {self.node} could not announce {ip} by BGP: {exc}")

    async def _peers(self, choices: list[PeerChoice]) -> list[Peer]:
        """The sessions to open: each BGPPeer's spec is already validated by the contract
        model (``plan``), so any holdTime the CRD accepts ("90s", "3m", "1m30s") works here.
        A peer whose password cannot be read is reported and left out; the others run."""
        peers = []
        for choice in choices:
            spec = choice.spec
            try:
                password = await self._password(spec.password_secret_ref)
                peers.append(Peer(
                    address=spec.address, asn=spec.asn, local_asn=spec.local_asn,
                    hold_time=spec.hold_seconds, password=password,
                    source_address=spec.source_address, port=spec.port,
                ))
                self._unusable.pop(("BGPPeer", choice.name), None)
            except (KeyError, ValueError, ApiError) as exc:
                self._refuse(self._unusable, "BGPPeer", choice.name, str(exc), choice.obj)
        return peers

    async def _password(self, ref: SecretKeyRef | None) -> str | None:
        if ref is None:
            return None
        namespace = ref.namespace or self.settings.namespace
        if namespace != self.settings.namespace:
            # the speaker may read Secrets only in its own namespace (RBAC, by design)
            raise ValueError(
                f"passwordSecretRef must be in namespace {self.settings.namespace}, "
                f"not {namespace}"
            )
        secret = await self.client.get(SECRETS, namespace, ref.name)
        raw = (secret.get("data") or {}).get(ref.key)
        return base64.b64decode(raw).decode() if raw else None

    def _report_invalid(self, refused: list[Invalid]) -> None:
        """Report each object the contract models refuse once per reason (a plan runs on every
        change; an object fixed and broken again is reported again)."""
        now = {(item.kind, item.name): item for item in refused}
        for ident in [i for i in self._invalid if i not in now]:
            del self._invalid[ident]
        for item in now.values():
            self._refuse(self._invalid, item.kind, item.name, item.message, item.obj)

    def _refuse(self, reported: dict[tuple[str, str], str], kind: str, name: str, message: str,
                obj: JSON) -> None:
        """Log, note and record a Warning Event on the object itself, unless already said."""
        if reported.get((kind, name)) == message:
            return
        reported[(kind, name)] = message
        log.warning("%s %s ignored, the others are served: %s", kind, name, message)
        self._note_error(f"{kind.lower()}/{name}", message)
        self.recorder.emit(obj, "Warning", names.REASON_ANNOUNCE_FAILED,
                           f"node {self.node} ignores {kind} {name}: {message}")

    async def _event(self, service: str, kind: str, reason: str, message: str) -> None:
        svc = self.informers["services"].cache.get(service)
        if svc is not None:
            await self.recorder.record(svc, kind, reason, message)  # type: ignore[arg-type]

    def _note_error(self, what: str, message: str) -> None:
        self.last_errors.append({"object": what, "error": message, "at": rfc3339(time.time())})
        del self.last_errors[:-20]

    async def _refresh_lifetimes(self) -> None:
        """Extend our addresses' kernel lifetime after every successful Lease renewal, and at
        least every renew period while our Lease counts as renewed (a slow API server must
        not let a live owner's addresses expire); never once we are fenced."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._renewed.wait(), self.settings.renew_interval)
            self._renewed.clear()
            if self.membership.is_live():
                try:
                    await self.announcer.refresh()
                except Exception as exc:
                    self._note_error("refresh", str(exc))

    async def _heartbeat_loop(self) -> None:
        while True:
            self._heartbeat = time.monotonic()
            await asyncio.sleep(1.0)

    # -- health ----------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, str]:
        """Liveness: only what a restart fixes; an API outage is not (ccm.health.probes)."""
        ok, detail = probes.liveness(heartbeat=self._heartbeat, contact=self.api_contact)
        membership = getattr(self, "membership", None)  # made in start()
        if ok and membership is not None and not membership.is_live():
            detail += "; not renewing its lease"
        return ok, detail

    def ready(self) -> tuple[bool, str]:
        if not self.ready_event.is_set():
            return False, "caches not synced"
        if not self.membership.settled():
            # a rollout that moved on now would stop the next node before this one may answer
            return False, "joining: ready a lease duration after the first Lease renewal"
        return probes.readiness(
            (True, f"announcing {len(self.l2_owned)} L2, {len(self.plan.bgp)} BGP addresses"),
            self.api_contact,
        )

    def status(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "api": self.api_contact.status(),
            "membership": self.membership.status(),
            "live_nodes": sorted(self.membership.live_nodes()),
            "l2": {ip: svc for ip, svc in sorted(self.l2_owned.items())},
            "l2_handing_over": sorted(self._handovers),
            "bgp": sorted(self.plan.bgp),
            "bgp_peers": self.bgp.peer_states() if self.bgp is not None else {},
            "last_errors": self.last_errors[-10:],
        }
