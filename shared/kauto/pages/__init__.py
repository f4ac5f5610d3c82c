"""Self-contained HTML pages people open from the bucket: the shared style and the inline SVG charts."""
