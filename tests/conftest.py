"""Shared fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Small tensors run fastest single-threaded (and do not fight a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
