"""Gradio entry point (placeholder until the streaming Rerun app lands): shows the package status."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

import human3r_demo  # noqa: E402

with gr.Blocks(title="Human3R demo") as demo:
    gr.Markdown(
        f"# Human3R demo {human3r_demo.__version__}\n"
        "The streaming app is under construction. Meanwhile use the Python API "
        "(`human3r_demo.reconstruct`) or check parity with `python -m human3r_demo.parity`."
    )

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), ssr_mode=False)
