"""Pod networking: network namespaces pinned to files, and CNI plugins that wire them up."""
