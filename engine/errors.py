"""The engine's input errors: each names the path of the offending value in its JSON."""


class PathError(ValueError):
    """A fault located by a JSON path (`entry[1].params.window`); survives pickling to workers."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.message))
