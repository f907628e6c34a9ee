"""The platform's smoke flow: proves a worker picks up a run, executes it and reports back to the server."""

import platform

from prefect import flow, get_run_logger


@flow(name="platform-smoke")
def smoke(greeting: str = "hello") -> str:
    logger = get_run_logger()
    message = "%s from %s" % (greeting, platform.node())
    logger.info(message)
    return message
