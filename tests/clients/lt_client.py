#!/usr/bin/python3
"""A libtorrent (python3-libtorrent) peer for the end-to-end tests.

Seeds or downloads one torrent with DHT, PEX and LSD off, so the tracker is
the only source of peers. Prints one status line a second; runs until killed
(a finished download keeps seeding, as a real client would).
"""
import argparse
import sys
import time

import libtorrent as lt


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--torrent", required=True)
    p.add_argument("--save", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seed", action="store_true")
    # libtorrent re-announces at most every 300 s by default, whatever the
    # tracker's interval; tests that wait for a later announce lower it.
    p.add_argument("--min-announce-interval", type=int, default=None)
    args = p.parse_args()

    settings = {
        "listen_interfaces": f"127.0.0.1:{args.port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.status_notification,
        "user_agent": "edge-tracker-e2e libtorrent/" + lt.__version__,
    }
    if args.min_announce_interval is not None:
        settings["min_announce_interval"] = args.min_announce_interval
    ses = lt.session(settings)
    info = lt.torrent_info(args.torrent)
    atp = lt.add_torrent_params()
    atp.ti = info
    atp.save_path = args.save
    atp.flags |= lt.torrent_flags.disable_dht | lt.torrent_flags.disable_pex | lt.torrent_flags.disable_lsd
    if args.seed:
        atp.flags |= lt.torrent_flags.seed_mode
    h = ses.add_torrent(atp)
    while True:
        for a in ses.pop_alerts():
            print(f"alert {type(a).__name__}: {a.message()}", flush=True)
        s = h.status()
        print(
            f"status state={s.state} progress={s.progress:.3f} peers={s.num_peers} "
            f"seeding={s.is_seeding} tracker={s.current_tracker}",
            flush=True,
        )
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
