"""The domain: the case store, intake, dedup, dispatch, deadlines, the event stream and the outbox."""
