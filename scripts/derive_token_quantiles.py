"""Derive ``src/unitcost/data/azure_token_quantiles.json`` from the Azure LLM inference traces.

Provenance of the token-length distributions the demo generator (``unitcost.demo``) samples
from. The demo never reads the traces themselves at run time: it reads the small JSON file
this script writes (201 quantiles of prompt and output tokens per trace, with the attribution
the publishers ask for).

Usage::

    python scripts/derive_token_quantiles.py [--source /work/shared/data/azure-llm-inference-2023]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_SOURCE = Path("/work/shared/data/azure-llm-inference-2023")
TARGET = Path(__file__).resolve().parents[1] / "src" / "unitcost" / "data" / "azure_token_quantiles.json"
N_QUANTILES = 201
TRACES = {"conv": "AzureLLMInferenceTrace_conv.csv", "code": "AzureLLMInferenceTrace_code.csv"}

ATTRIBUTION = {
    "dataset": "Azure LLM inference traces 2023 (about one hour on 2023-11-16, UTC)",
    "source": "Azure Public Dataset, https://github.com/Azure/AzurePublicDataset "
    "(data/AzureLLMInferenceTrace_conv.csv, data/AzureLLMInferenceTrace_code.csv)",
    "licence": "Creative Commons Attribution 4.0 International (CC-BY-4.0)",
    "citation": 'Patel, Choukse, Zhang, Shah, Goiri, Maleki, Bianchini, "Splitwise: Efficient generative '
    'LLM inference using phase splitting", ISCA 2024',
    "note": "Derived data: quantiles of ContextTokens (prompt tokens) and GeneratedTokens (output tokens) "
    "per trace. Keep this attribution wherever the data or figures derived from it are shown.",
}


def quantiles_of(path: Path) -> dict[str, object]:
    """Return the row count and the quantiles of both token columns of one trace file."""
    frame = pd.read_csv(path, usecols=["ContextTokens", "GeneratedTokens"])
    probabilities = np.linspace(0.0, 1.0, N_QUANTILES)
    return {
        "rows": len(frame),
        "context_tokens": np.round(np.quantile(frame["ContextTokens"], probabilities), 2).tolist(),
        "generated_tokens": np.round(np.quantile(frame["GeneratedTokens"], probabilities), 2).tolist(),
    }


def main() -> None:
    """Write the quantile file from the trace CSVs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder holding the trace CSVs")
    parser.add_argument("--target", type=Path, default=TARGET, help="JSON file to write")
    args = parser.parse_args()
    document = {
        "attribution": ATTRIBUTION,
        "derived_by": "scripts/derive_token_quantiles.py",
        "probabilities": f"{N_QUANTILES} evenly spaced from 0 to 1 (linear interpolation, numpy.quantile)",
        "traces": {name: quantiles_of(args.source / file) for name, file in TRACES.items()},
    }
    args.target.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.target}")


if __name__ == "__main__":
    main()
