"""Loopback test peers (DOT OAuth2 server, fault server). API: see ``tests.peers.servers``."""
