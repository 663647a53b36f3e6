"""The installation's master secret and the keys derived from it (master), and the PLC credentials stored
encrypted with one of them (credentials). Below every other package: collectors, storage and the web side use it."""
