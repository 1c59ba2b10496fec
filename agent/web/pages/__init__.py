"""One module per page of the technician UI."""
