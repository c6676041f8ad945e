"""commy.Session against a real commy-server on loopback (WSS): remote
operations on every container kind, a local-mode service, subscriptions,
remote wait_change, tokens, and the errors of the auth family."""

import os
import signal
import threading
import time
import unittest

import commy
from util import CommyServer

server = None


def setUpModule():
    global server
    server = CommyServer()


def tearDownModule():
    if server is not None:
        server.stop()


def session(key=None, tenant="acme"):
    s = commy.Session(server.url, ca_file=server.ca_file, timeout=10)
    s.authenticate(tenant, key or CommyServer.KEY)
    return s


class Waiter:
    """Collects callback calls; wait(n) until n arrived (or 10 s: a failure)."""

    def __init__(self):
        self.items, self.cv = [], threading.Condition()
        self.threads = set()

    def __call__(self, change):
        with self.cv:
            self.items.append(change)
            self.threads.add(threading.current_thread().name)
            self.cv.notify_all()

    def wait(self, n=None, until=None):
        """Waits until n changes arrived, or until(changes) is true."""
        test = until or (lambda items: len(items) >= n)
        with self.cv:
            self.cv.wait_for(lambda: test(self.items), timeout=10)
            return list(self.items)


class TestSession(unittest.TestCase):
    def test_remote_operations_on_every_kind(self):
        with session() as s, session() as s2:
            svc = s.open_service("app", mode="remote")
            self.assertEqual(svc.mode, "remote")
            self.assertIsInstance(svc, commy.Segment)
            box = svc.box("hits", commy.i64)
            self.assertIsInstance(box, commy.Box)
            box.value = 5
            self.assertEqual(box.fetch_add(2), 5)
            self.assertTrue(box.cas(7, 10))
            self.assertEqual(box.value, 10)
            vec = svc.vec("v", commy.f64)
            self.assertIsInstance(vec, commy.Vec)
            vec.append(1.5)
            vec.extend([2.5, 3.5])
            vec[0] = 0.5
            self.assertEqual((len(vec), vec[-1], list(vec)), (3, 3.5, [0.5, 2.5, 3.5]))
            self.assertEqual(vec.pop(), 3.5)
            st = svc.str("title")
            st.value = "héllo"
            st.append("!")
            self.assertEqual(st.value, "héllo!")
            dq = svc.deque("q", commy.str_)
            dq.append("b")
            dq.appendleft("a")
            self.assertEqual((len(dq), dq.popleft(), dq.pop(), len(dq)), (2, "a", "b", 0))
            m = svc.map("m", key=commy.str_, value=commy.i64)
            self.assertIsInstance(m, commy.Map)
            m["x"] = 1
            m["y"] = 2
            del m["x"]
            self.assertEqual((m["y"], m.get("x"), "y" in m, len(m)), (2, None, True, 1))
            with self.assertRaises(KeyError):
                m["x"]
            self.assertEqual(m.to_dict(), {"y": 2})
            se = svc.set("s", commy.i32)
            self.assertTrue(se.add(3))
            self.assertFalse(se.add(3))
            se.add(4)
            se.discard(3)
            self.assertEqual(set(se), {4})
            om = svc.ordered_map("om", key=commy.i64, value=commy.str_)
            for k in (5, 1, 3):
                om[k] = str(k)
            self.assertEqual(list(om.irange_items(2, 5)), [(3, "3"), (5, "5")])
            self.assertEqual((om.first(), om.last()), ((1, "1"), (5, "5")))
            os_ = svc.ordered_set("os", commy.u16)
            for k in (9, 2, 7):
                os_.add(k)
            self.assertEqual(list(os_), [2, 7, 9])
            self.assertEqual(os_.lower_bound(3), 7)
            # Another client of the same service sees every value.
            other = s2.open_service("app", mode="remote")
            self.assertEqual(other.box("hits", commy.i64).value, 10)
            self.assertEqual(list(other.vec("v", commy.f64)), [0.5, 2.5])
            self.assertEqual(other.open("m").to_dict(), {"y": 2})
            self.assertEqual(other.str("title").value, "héllo!")
            self.assertIsInstance(other.open("om"), commy.OrderedMap)
            # The types are checked remotely as they are locally.
            with self.assertRaises(OverflowError):
                other.set("s", commy.i32).add(2**40)
            with self.assertRaises(commy.TypeMismatchError):
                other.map("m", key=commy.i64, value=commy.i64)

    def test_local_mode_maps_the_file(self):
        with session() as s, session() as s2:
            local = s.open_service("other", mode="local")
            self.assertEqual(local.mode, "local")
            m = local.map("cfg", key=commy.str_, value=commy.i64)
            m["workers"] = 4
            v = local.vec("nums", commy.i64)
            v.extend(range(5))
            self.assertEqual(bytes(v.memoryview())[:8], (0).to_bytes(8, "little"))  # mapped: zero-copy works
            remote = s2.open_service("other", mode="remote")
            self.assertEqual(remote.map("cfg", key=commy.str_, value=commy.i64)["workers"], 4)
            with self.assertRaises(commy.NotSupportedError):
                remote.vec("nums", commy.i64).memoryview()
            auto = s2.open_service("other")  # auto: local, as this client is on the server's machine
            self.assertEqual(auto.mode, "local")
            self.assertEqual(auto.vec("nums", commy.i64).tolist(), [0, 1, 2, 3, 4])

    def test_local_writes_survive_a_rotation(self):
        # Revoking another local client rotates the service file under a
        # local writer: its writes keep succeeding, none is lost (the old
        # file is retired first; a write that meets it is made in the new one).
        with session() as w, session() as admin, session(CommyServer.VICTIM) as victim:
            svc = w.open_service("docs", mode="local")
            count = svc.box("count", commy.i64)
            count.value = 0
            victim_svc = victim.open_service("docs", mode="local")  # kept open: the revocation rotates it
            done, adds, errors = threading.Event(), [0], []

            def hammer():
                try:
                    while not done.is_set():
                        count.fetch_add(1)
                        adds[0] += 1
                except commy.Error as e:
                    errors.append(e)
            t = threading.Thread(target=hammer)
            t.start()
            time.sleep(0.2)
            self.assertEqual(admin.revoke_client("victim"), 1, server.log_text()[-3000:])
            self.assertEqual(victim_svc.mode, "local")
            time.sleep(0.2)
            done.set()
            t.join(10)
            self.assertEqual(errors, [])
            self.assertGreater(adds[0], 0)
            remote = admin.open_service("docs", mode="remote").box("count", commy.i64)
            self.assertEqual(remote.value, adds[0])
            self.assertEqual(count.value, adds[0])

    def test_subscription_callback_in_order(self):
        with session() as s, session() as writer:
            svc = s.open_service("app", mode="remote")
            counter = svc.box("counter", commy.i64)
            counter.value = 0
            got = Waiter()
            svc.subscribe("counter", got)
            # A remote writer: the server broadcasts every write, in order.
            w = writer.open_service("app", mode="remote").box("counter", commy.i64)
            for i in range(1, 6):
                w.value = i
            changes = got.wait(5)
            self.assertEqual([c.value for c in changes], [1, 2, 3, 4, 5])
            c = changes[-1]
            self.assertEqual((c.var, c.service, c.len), ("counter", svc, 1))
            self.assertIn(c.kind, ("box", None))  # the kind travels when the server knows it
            self.assertGreater(c.version, changes[0].version)
            self.assertNotIn("MainThread", got.threads)
            # A local writer (mapped file): the server notices its writes; a
            # burst may arrive as fewer changes, but in order and ending with the last.
            lw = writer.open_service("app", mode="local").box("counter", commy.i64)
            for i in range(6, 11):
                lw.value = i
            values = [c.value for c in got.wait(until=lambda items: items[-1].value == 10)]
            self.assertEqual(values[-1], 10)
            self.assertEqual(values, sorted(values))
            svc.unsubscribe("counter")
            with self.assertRaises(commy.NotFoundError):
                svc.unsubscribe("counter")

    def test_callback_may_call_commy_and_errors_do_not_stop_delivery(self):
        with session() as s, session() as writer:
            svc = s.open_service("app", mode="remote")
            echo = svc.vec("echo", commy.i64)
            echo.clear()
            got = Waiter()
            bad = []

            def cb(change):
                echo.append(change.value)  # a remote call from inside a callback
                got(change)
                if change.value == 1:
                    bad.append(1)
                    raise RuntimeError("a failing callback")

            w = writer.open_service("app", mode="remote").box("src", commy.i64)
            svc.subscribe("src", cb)
            import sys
            old, sys.unraisablehook = sys.unraisablehook, lambda args: None
            try:
                for i in (1, 2, 3):
                    w.value = i
                got.wait(3)
            finally:
                sys.unraisablehook = old
            self.assertEqual(echo.tolist()[-3:], [1, 2, 3])
            self.assertEqual(bad, [1])

    def test_wait_change_on_a_remote_container(self):
        with session() as s, session() as writer:
            m = s.open_service("app", mode="remote").map("watched", key=commy.i64, value=commy.i64)
            seen = m.version
            w = writer.open_service("app", mode="remote").map("watched", key=commy.i64, value=commy.i64)
            t = threading.Timer(0.2, lambda: w.__setitem__(1, 1))
            t.start()
            try:
                self.assertTrue(m.wait_change(seen, timeout=10))
            finally:
                t.join()
            self.assertEqual(m[1], 1)
            self.assertNotEqual(m.version, seen)

    def test_wrong_key_and_other_auth_errors(self):
        s = commy.Session(server.url, ca_file=server.ca_file)
        try:
            for tenant, key in (("acme", "app.wrong-secret"), ("acme", "nobody.x"), ("nowhere", CommyServer.KEY),
                                ("rival", CommyServer.KEY)):
                with self.subTest(tenant=tenant, key=key), self.assertRaises(commy.AuthError) as cm:
                    s.authenticate(tenant, key)
                self.assertIsInstance(cm.exception, PermissionError)
                self.assertEqual(cm.exception.code, commy.native.COMMY_EAUTH)
            with self.assertRaises(commy.AuthError):
                s.open_service("app")  # not authenticated
        finally:
            s.close()
        with session() as admin, session(CommyServer.READER) as ro:
            keep = admin.open_service("app", mode="remote")  # the service lives while a client has it open
            keep.map("ro", key=commy.str_, value=commy.i64)["a"] = 1
            m = ro.open_service("app", mode="remote").map("ro", key=commy.str_, value=commy.i64, open="existing")
            self.assertEqual(m["a"], 1)
            with self.assertRaises(commy.ForbiddenError):
                m["z"] = 1
        with session(CommyServer.RIVAL, tenant="rival") as eve:
            with self.assertRaises(commy.NotFoundError):
                eve.open_service("app")  # another tenant's service does not exist for eve

    def test_authenticate_jwt(self):
        with commy.Session(server.url, ca_file=server.ca_file) as s:
            with self.assertRaises(commy.AuthError):
                s.authenticate_jwt("jw", CommyServer.jwt_hs256("jim", secret="another-secret-that-is-also-32-bytes-long"))
            with self.assertRaises(commy.ExpiredError):
                s.authenticate_jwt("jw", CommyServer.jwt_hs256("jim", exp_in=-1000))
            self.assertIs(s.authenticate_jwt("jw", CommyServer.jwt_hs256("jim")), s)
            self.assertEqual(s.client_id, "jim")
            self.assertTrue(s.token)
            m = s.open_service("app", mode="remote").map("j", key=commy.str_, value=commy.i64)
            m["a"] = 7
            self.assertEqual(m["a"], 7)

    def test_tokens_refresh_logout(self):
        s = session()
        token = s.token
        self.assertTrue(token)
        self.assertGreater(s.token_expires, 0)
        self.assertEqual(s.client_id, "app")
        with commy.Session(server.url, ca_file=server.ca_file) as s2:
            s2.authenticate_token("acme", token)
            self.assertEqual(s2.open_service("app", mode="remote").mode, "remote")
        s.refresh()
        self.assertNotEqual(s.token, token)
        with commy.Session(server.url, ca_file=server.ca_file) as s3:
            with self.assertRaises(commy.AuthError):
                s3.authenticate_token("acme", token)  # the old one is revoked
            new = s.token
            s.logout()
            with self.assertRaises(commy.AuthError):
                s3.authenticate_token("acme", new)
        s.close()

    def test_close_is_safe_in_any_order(self):
        s = session()
        svc = s.open_service("app", mode="remote")
        m = svc.map("m2", key=commy.i64, value=commy.i64)
        m[1] = 1
        svc.subscribe("m2", lambda c: None)
        s.close()
        s.close()
        self.assertTrue(svc.closed)
        with self.assertRaises(commy.Error):
            m[1]
        m.close()
        with self.assertRaises(commy.ClosedError):
            s.open_service("app")

    def test_close_from_inside_a_callback(self):
        s = session()
        svc = s.open_service("app", mode="remote")
        b = svc.box("closer", commy.i64)
        done = threading.Event()

        def cb(change):
            s.close()  # the session's own event thread closes it
            done.set()

        svc.subscribe("closer", cb)
        with session() as w:
            w.open_service("app", mode="remote").box("closer", commy.i64).value = 1
            self.assertTrue(done.wait(10))
        s._dispatcher.join(10)
        self.assertFalse(s._dispatcher.is_alive())
        self.assertTrue(s.closed)
        with self.assertRaises(commy.Error):
            b.value

    def test_disconnected_then_reconnected(self):
        # A server of its own, stopped and started again on the same port and data.
        own = CommyServer()
        try:
            s = commy.Session(own.url, ca_file=own.ca_file, timeout=5, reconnect_max=0.2)
            s.authenticate("acme", CommyServer.KEY)
            svc = s.open_service("keep", mode="remote")  # persistent: its file outlives the server process
            m = svc.map("m", key=commy.i64, value=commy.i64)
            m[1] = 1
            self.assertTrue("m" in svc)
            self.assertFalse("nothing" in svc)
            own.kill()
            with self.assertRaises(commy.DisconnectedError) as cm:
                for _ in range(100):  # the drop is noticed within a moment
                    m[2] = 2
                    threading.Event().wait(0.05)
            self.assertIsInstance(cm.exception, ConnectionError)
            own.start()
            for _ in range(200):  # reconnects with its token, reopens the service
                if s.connected:
                    break
                threading.Event().wait(0.05)
            self.assertTrue(s.connected)
            m[3] = 3
            self.assertEqual((m[1], m[3]), (1, 3))
            s.close()
        finally:
            own.stop()

    def test_silence_timeout(self):
        # A server that goes silent without closing (SIGSTOP) is taken for
        # dead after silence_timeout; the error names the value in force.
        for bad in (0, -1, 70000):
            with self.assertRaises(commy.InvalidArgumentError):
                commy.Session(server.url, ca_file=server.ca_file, silence_timeout=bad)
        own = CommyServer()
        try:
            s = commy.Session(own.url, ca_file=own.ca_file, timeout=5, reconnect=False, silence_timeout=1.5)
            s.authenticate("acme", CommyServer.KEY)
            box = s.open_service("app", mode="remote").box("silent", commy.i64)
            box.value = 3
            os.kill(own.proc.pid, signal.SIGSTOP)
            try:
                for _ in range(600):  # about 2 s; 30 s only guards against a hang
                    if not s.connected:
                        break
                    time.sleep(0.05)
                self.assertFalse(s.connected)
                with self.assertRaises(commy.DisconnectedError) as cm:
                    box.value
                self.assertIn("sent nothing", str(cm.exception))
                self.assertIn("silence_timeout_s 2", str(cm.exception))  # 1.5 s, rounded up
            finally:
                os.kill(own.proc.pid, signal.SIGCONT)
            s.close()
        finally:
            own.stop()

    def test_connect_errors(self):
        with self.assertRaises(commy.InvalidArgumentError):
            commy.Session("http://nowhere")
        with self.assertRaises((commy.DisconnectedError, commy.TimeoutError)):
            commy.Session(f"wss://127.0.0.1:{server.port}", timeout=5, reconnect=False)  # no CA: TLS refuses


if __name__ == "__main__":
    unittest.main()
