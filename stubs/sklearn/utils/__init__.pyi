from typing import Any

import numpy as np
import numpy.typing as npt

class Bunch(dict[str, Any]):
    data: npt.NDArray[np.float64]
    target: npt.NDArray[np.int64]
    images: npt.NDArray[np.float64]
    target_names: npt.NDArray[Any]
    DESCR: str
    def __init__(self, **kwargs: Any) -> None: ...
