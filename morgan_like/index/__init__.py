"""The only network layer: no other package imports an HTTP client.

One pooled client per upstream (``upstream``) with pip's own settings
(``pipconfig``, ``hosts``: index URL, CA bundle, client certificate, proxies,
credentials, trusted hosts), capped responses and per-file deadlines (``limits``),
cross-host redirects warned or refused, one redaction of credentials in URLs
(``httputil``); project pages kept between runs with their validators
(``pagecache``), serial lists (``serials``), remote wheel metadata (``remote``) and
the resolvers' shared read-ahead (``finder``).
"""
