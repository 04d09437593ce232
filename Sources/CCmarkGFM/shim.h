#include <cmark-gfm.h>
#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm-extension_api.h>

/* Macros Swift does not import. */
static inline int git_ml_cmark_opt_default(void) { return CMARK_OPT_DEFAULT; }
static inline int git_ml_cmark_opt_footnotes(void) { return CMARK_OPT_FOOTNOTES; }
