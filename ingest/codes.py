"""Error codes returned by the ingest API: a public contract, keep them stable."""


class BatchCode:
    """Codes for errors that refuse a whole request."""

    MALFORMED_JSON = "malformed_json"
    NUMBER_TOO_LONG = "number_too_long"
    INVALID_ENCODING = "invalid_encoding"
    NOT_AN_OBJECT = "body_not_an_object"
    MISSING_EVENTS = "missing_events"
    EVENTS_NOT_A_LIST = "events_not_a_list"
    EMPTY_BATCH = "empty_batch"
    INVALID_SCHEMA_NAME = "invalid_schema_name"
    TOO_MANY_EVENTS = "too_many_events"
    BODY_TOO_LARGE = "body_too_large"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    MALFORMED_PROTOBUF = "malformed_protobuf"
    STORE_UNAVAILABLE = "store_unavailable"
    STORE_REFUSED = "store_refused"
    MALFORMED_GZIP = "malformed_gzip"
    UNSUPPORTED_CONTENT_ENCODING = "unsupported_content_encoding"
    INVALID_TRACEPARENT = "invalid_traceparent"
    INVALID_TRACESTATE = "invalid_tracestate"
    RATE_LIMITED = "rate_limited"


class BrowserCode:
    """Codes for refusals of browser (publishable key) requests: origin, key kind, CORS."""

    ORIGIN_REQUIRED = "origin_required"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    KEY_NOT_PUBLISHABLE = "key_not_publishable"
    PUBLISHABLE_KEY_NOT_ALLOWED = "publishable_key_not_allowed"
    PREFLIGHT_METHOD_NOT_ALLOWED = "preflight_method_not_allowed"


class RejectCode:
    """Codes for one event's rejection; the rest of its batch is unaffected."""

    MISSING_SCHEMA = "missing_schema"
    # The event names a data subject whose events are refused (a suppression): final.
    SUPPRESSED = "suppressed"
    UNKNOWN_SCHEMA = "unknown_schema"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_EVENT = "invalid_event"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    OUT_OF_RANGE = "out_of_range"
    TOO_LONG = "too_long"
    FORBIDDEN_SCHEMA = "forbidden_schema"
    FORBIDDEN_SOURCE = "forbidden_source"
    EVENT_TOO_LARGE = "event_too_large"
    CLOCK_SKEW = "clock_skew"
    EXPIRED = "expired"
    INVALID_VALUE = "invalid_value"
