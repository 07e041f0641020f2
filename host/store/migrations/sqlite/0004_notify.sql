-- PostgreSQL's 0004 adds triggers that notify other servers of permission changes. SQLite
-- serves one server, whose own writes invalidate its caches: nothing to do here (the step
-- exists so both backends carry the same migration steps).
SELECT 1;
