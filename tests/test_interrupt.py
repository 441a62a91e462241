"""interrupt.Stop and on_sigint: SIGINT raises the flag first, a shielded block holds it."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Future

import pytest

from morgan_like.interrupt import Stop, Stopped, on_sigint


def _sigint_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)  # the handler runs between bytecodes of this (the main) thread


def test_sigint_sets_the_flag_then_interrupts() -> None:
    stop = Stop()
    with pytest.raises(KeyboardInterrupt), on_sigint(stop):
        _sigint_self()
    assert stop.is_set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_shielded_block_finishes_before_the_interrupt() -> None:
    stop = Stop()
    done = []
    with pytest.raises(KeyboardInterrupt), on_sigint(stop):
        with stop.shielded():
            _sigint_self()
            done.append("written")
        done.append("after")  # never reached: the held Ctrl+C is raised at the block's end
    assert done == ["written"] and stop.is_set()


def test_waits_give_up_once_stopped() -> None:
    stop = Stop()
    never: Future[int] = Future()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(Stopped):
        stop.result(never)
    with pytest.raises(Stopped):
        stop.check()
    done: Future[int] = Future()
    done.set_result(3)
    assert Stop().result(done) == 3
