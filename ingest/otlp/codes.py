"""Codes of OTLP refusals besides the ingest batch and reject codes."""


class OtlpCode:
    """Why an OTLP request, log record or data point was refused."""

    TRACES_NOT_ACCEPTED = "traces_not_accepted"
    UNMAPPED_LOG_RECORD = "unmapped_log_record"
    TOO_MANY_ATTRIBUTES = "too_many_attributes"
    UNCLASSIFIED_ATTRIBUTE = "unclassified_attribute"
    UNSUPPORTED_METRIC_TYPE = "unsupported_metric_type"
    INVALID_METRIC_NAME = "invalid_metric_name"
    INVALID_TRACE_ID = "invalid_trace_id"
