from typing import Any

PLUGIN_NAME: str
EXPERIMENT_TAG: str
SESSION_START_INFO_TAG: str
SESSION_END_INFO_TAG: str

# The parsed messages are protocol buffers (untyped).
def parse_experiment_plugin_data(content: bytes) -> Any: ...
def parse_session_start_info_plugin_data(content: bytes) -> Any: ...
