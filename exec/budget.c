/* budget.c — see budget.h. */
#include "exec/budget.h"

#include "exec/params.h"
#include "base/util.h"

/* bf16 elements kept per token per layer of one stack (budget.h lists them) */
static double kept_per_token_layer(const ExecStackLayout *L) {
    return 4.0 * L->H + L->qkv_rows + (double)L->nh * L->hd + L->up_rows + L->F;
}
static double widest_row(const ExecStackLayout *L) {
    double w = OS_MAX((double)L->qkv_rows, (double)L->up_rows);
    return OS_MAX(w, (double)L->H);
}

void exec_budget(ExecBudget *b, const ModelSpec *m, uint64_t llm_rows, const uint64_t *enc_rows,
                 uint32_t llm_longest, const uint32_t *enc_longest) {
    double params = (double)model_params(m), act = 0, scratch = 0, grad_rows = 0;
    for (uint32_t k = 0; k <= m->n_enc; k++) {
        const StackSpec *s = k < m->n_enc ? &m->enc[k].stack : &m->llm;
        double rows = k < m->n_enc ? (double)enc_rows[k] : (double)llm_rows;
        double n = k < m->n_enc ? (double)enc_longest[k] : (double)llm_longest;
        ExecStackLayout L;
        exec_stack_layout(&L, s);
        act += rows * (kept_per_token_layer(&L) * L.layers + L.H) * 2.0;
        scratch = OS_MAX(scratch, n * n * L.nh * (4.0 + 2.0 + 4.0));
        grad_rows = OS_MAX(grad_rows, rows * widest_row(&L) * 2.0 * 2.0);
        if (k < m->n_enc) /* projector: merged input, hidden and output rows */
            act += rows / m->enc[k].ratio * (3.0 * m->llm.hidden) * 2.0;
    }
    scratch += (double)llm_rows * m->llm.vocab * (4.0 + 2.0) + grad_rows;
    b->weights = params * 2.0;
    b->grads = params * 4.0;
    b->activations = act;
    b->scratch = scratch;
    b->total = b->weights + b->grads + b->activations + b->scratch;
}
