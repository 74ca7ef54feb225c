/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Text tables whose columns are as wide as their widest cell (in terminal
 * columns, multibyte aware): a long target widens its column rather than
 * pushing the rest of its line out of line.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

typedef struct Table Table;

/* Columns by header; a header starting with '>' is right-aligned (the '>'
 * is not shown). NULL on OOM. */
Table *table_new(const char *const *headers, size_t n_columns);
void table_free(Table *t);
/* Appends the next cell, row by row (NULL is an empty cell). -ENOMEM. */
int table_add(Table *t, const char *cell);
/* Header and rows, two blanks between columns, no trailing blanks. */
void table_print(const Table *t, FILE *f);

static inline void table_freep(Table **t) {
	table_free(*t);
}
#define _cleanup_table_ __attribute__((cleanup(table_freep)))
