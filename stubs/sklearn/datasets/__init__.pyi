from typing import Literal, overload

import numpy as np
import numpy.typing as npt
from sklearn.utils import Bunch

@overload
def load_digits(
    *, n_class: int = ..., return_X_y: Literal[False] = ..., as_frame: Literal[False] = ...
) -> Bunch: ...
@overload
def load_digits(
    *, n_class: int = ..., return_X_y: Literal[True], as_frame: Literal[False] = ...
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]: ...
