"""Spark's own console output (log4j lines, stage progress bars, the JVM's notices, pyspark's
warnings): hidden when repast's command runs without --verbose, which sets REPAST_QUIET_ENGINES=1
(repast/cli/common.py). The JVM's output (errors only) then goes to <tmp>/repast-spark-<pid>.log.
A library caller's Spark logs as its own configuration says."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

QUIET_ENV = "REPAST_QUIET_ENGINES"

# log4j2 (Spark 3.3+): errors only, on stderr. The JVM reads it at start, so even the warnings
# printed before a session exists (native-hadoop, the default log level notice) are hidden.
_LOG4J2_ERRORS_ONLY = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


def quiet() -> bool:
    return os.environ.get(QUIET_ENV) == "1"


def quiet_conf(conf: dict[str, str]) -> dict[str, str]:
    """`conf` with Spark's console output off, unless it sets those keys itself."""
    path = Path(tempfile.gettempdir()) / "repast-spark-log4j2-errors.properties"
    if not path.exists() or path.read_text() != _LOG4J2_ERRORS_ONLY:
        path.write_text(_LOG4J2_ERRORS_ONLY)
    java = conf.get("spark.driver.extraJavaOptions", "")
    if "log4j2.configurationFile" not in java:
        java = f"{java} -Dlog4j2.configurationFile=file:{path}".strip()
    return {"spark.ui.showConsoleProgress": "false", **conf, "spark.driver.extraJavaOptions": java}


def quiet_session(session: Any) -> None:
    """A session that existed before: errors only from here on."""
    session.sparkContext.setLogLevel("ERROR")


def hide_pyspark_warnings() -> None:
    import warnings

    warnings.filterwarnings("ignore", module=r"pyspark(\..*)?")


@contextmanager
def jvm_output_to_log() -> Iterator[None]:
    """While the JVM starts, the process's stderr is a log file, which the JVM keeps as its own:
    the JVM prints notices of its own (incubator modules) that no Spark setting turns off."""
    sys.stderr.flush()
    path = Path(tempfile.gettempdir()) / f"repast-spark-{os.getpid()}.log"
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
