"""The paper's experiments and figures, as commands that write JSON, Markdown and PNG."""
