# Install rules and Debian packaging (CPack).
