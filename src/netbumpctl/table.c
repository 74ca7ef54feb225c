/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "macro.h"
#include "table.h"

struct Table {
	size_t n_columns;
	char **headers;
	bool *right;
	char **cells; /* row by row */
	size_t n_cells, allocated;
};

/* Terminal columns s takes: a byte that is no valid character, or a
 * character that has no width, counts as one. */
static size_t display_width(const char *s) {
	mbstate_t st = {};
	size_t w = 0, n = strlen(s);

	for (size_t i = 0; i < n;) {
		wchar_t wc;
		size_t l = mbrtowc(&wc, s + i, n - i, &st);
		int cw;

		if (l == (size_t)-1 || l == (size_t)-2 || l == 0) {
			memset(&st, 0, sizeof(st));
			w++;
			i++;
			continue;
		}
		cw = wcwidth(wc);
		w += cw < 0 ? 1 : (size_t)cw;
		i += l;
	}
	return w;
}

Table *table_new(const char *const *headers, size_t n_columns) {
	Table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->n_columns = n_columns;
	t->headers = calloc(n_columns, sizeof(char *));
	t->right = calloc(n_columns, sizeof(bool));
	if (!t->headers || !t->right) {
		table_free(t);
		return NULL;
	}
	for (size_t c = 0; c < n_columns; c++) {
		t->right[c] = headers[c][0] == '>';
		t->headers[c] = strdup(headers[c] + t->right[c]);
		if (!t->headers[c]) {
			table_free(t);
			return NULL;
		}
	}
	return t;
}

void table_free(Table *t) {
	if (!t)
		return;
	for (size_t c = 0; t->headers && c < t->n_columns; c++)
		free(t->headers[c]);
	for (size_t k = 0; k < t->n_cells; k++)
		free(t->cells[k]);
	free(t->headers);
	free(t->right);
	free(t->cells);
	free(t);
}

int table_add(Table *t, const char *cell) {
	if (t->n_cells == t->allocated) {
		size_t na = t->allocated ? t->allocated * 2 : 64;
		char **n = realloc(t->cells, na * sizeof(char *));

		if (!n)
			return -ENOMEM;
		t->cells = n;
		t->allocated = na;
	}
	t->cells[t->n_cells] = strdup(cell ?: "");
	if (!t->cells[t->n_cells])
		return -ENOMEM;
	t->n_cells++;
	return 0;
}

static void print_row(const Table *t, char *const *row, const size_t *width, FILE *f) {
	size_t last = t->n_columns;

	/* The last non-empty cell: nothing is padded after it. */
	while (last > 0 && !row[last - 1][0])
		last--;
	for (size_t c = 0; c < last; c++) {
		size_t pad = width[c] - display_width(row[c]);
		bool is_last = c + 1 == last;

		if (c > 0)
			fputs("  ", f);
		if (t->right[c])
			fprintf(f, "%*s%s", (int)pad, "", row[c]);
		else
			fprintf(f, "%s%*s", row[c], is_last ? 0 : (int)pad, "");
	}
	fputc('\n', f);
}

void table_print(const Table *t, FILE *f) {
	_cleanup_free_ size_t *width = calloc(t->n_columns ?: 1, sizeof(size_t));

	if (!width)
		return;
	for (size_t c = 0; c < t->n_columns; c++)
		width[c] = display_width(t->headers[c]);
	for (size_t k = 0; k < t->n_cells; k++) {
		size_t w = display_width(t->cells[k]);

		if (w > width[k % t->n_columns])
			width[k % t->n_columns] = w;
	}
	print_row(t, t->headers, width, f);
	for (size_t k = 0; k + t->n_columns <= t->n_cells; k += t->n_columns)
		print_row(t, t->cells + k, width, f);
}
