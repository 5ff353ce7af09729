"""A scripted SIP caller (pjsua2, no sound card): dials, records what it hears, presses keys on cue.

    python scripts/voice/sip_caller.py --target sip:12333@127.0.0.1:5060 --record heard.wav \
        --keys 3.0:1 --keys 5.5:1 --seconds 25

Prints one JSON line: {"connected": bool, "disconnected_by": "remote"|"us", "answered_at": s, ...}.
Only ever dial loopback addresses.
"""

from __future__ import annotations

import argparse
import json
import time

import pjsua2 as pj


class ScriptedCall(pj.Call):
    """A call that records its received audio to a WAV file once media is up."""

    def __init__(self, account: pj.Account, record_path: str) -> None:
        super().__init__(account)
        self.record_path = record_path
        self.recorder: pj.AudioMediaRecorder | None = None
        self.confirmed_at: float | None = None
        self.disconnected_at: float | None = None
        self.last_status = 0

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 (pjsua2 API name)
        """Note when the call was answered and when it ended."""
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected_at = time.monotonic()
            self.last_status = info.lastStatusCode

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        """Start recording the far end's audio."""
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                if self.recorder is None:
                    self.recorder = pj.AudioMediaRecorder()
                    self.recorder.createRecorder(self.record_path)
                    self.getAudioMedia(index).startTransmit(self.recorder)


def main() -> int:
    """Place the call, follow the key script, hang up after --seconds, print the outcome."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--keys", action="append", default=[], help="SECONDS_AFTER_ANSWER:DIGITS")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=5070)
    args = parser.parse_args()
    script = sorted((float(at), digits) for at, digits in (k.split(":", 1) for k in args.keys))

    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.logConfig.level = 1
    config.logConfig.consoleLevel = 1
    config.medConfig.clockRate = 8000
    config.medConfig.sndClockRate = 8000
    config.medConfig.noVad = True
    endpoint.libInit(config)
    transport = pj.TransportConfig()
    transport.port = args.port
    transport.boundAddress = "127.0.0.1"
    endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    endpoint.libStart()
    endpoint.audDevManager().setNullDev()

    account_config = pj.AccountConfig()
    account_config.idUri = f"sip:citizen@127.0.0.1:{args.port}"
    account = pj.Account()
    account.create(account_config)

    call = ScriptedCall(account, args.record)
    call.makeCall(args.target, pj.CallOpParam(True))
    started = time.monotonic()
    pressed: list[tuple[float, str]] = []
    hung_up_by_us = False
    while time.monotonic() - started < args.seconds + 15:
        endpoint.libHandleEvents(10)
        if call.disconnected_at is not None:
            break
        if call.confirmed_at is None:
            continue
        elapsed = time.monotonic() - call.confirmed_at
        while script and elapsed >= script[0][0]:
            _, digits = script.pop(0)
            call.dialDtmf(digits)
            pressed.append((round(elapsed, 2), digits))
        if elapsed >= args.seconds:
            hung_up_by_us = True
            call.hangup(pj.CallOpParam(True))
            for _ in range(50):
                endpoint.libHandleEvents(10)
            break

    result = {
        "connected": call.confirmed_at is not None,
        "disconnected_by": "us" if hung_up_by_us else ("remote" if call.disconnected_at else "timeout"),
        "answered_after_s": round(call.confirmed_at - started, 2) if call.confirmed_at else None,
        "call_seconds": round((call.disconnected_at or time.monotonic()) - (call.confirmed_at or started), 2),
        "pressed": pressed,
        "recording": args.record if call.recorder is not None else None,
    }
    call.recorder = None  # close the WAV before the library goes
    del call
    endpoint.libDestroy()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
