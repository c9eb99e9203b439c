-- api.patient_detail as PL/pgSQL: the same query, planned once per session instead of on
-- every call. As a SQL function (not inlinable: it has a FROM) its body, four subqueries over
-- eight policy-filtered table references, was planned again on every request; at the
-- benchmark scale that was about a quarter of its time, as a member and as the owner alike.
create or replace function api.patient_detail(p_patient_id uuid)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
    return (
        select jsonb_build_object(
            'patient', to_jsonb(p),
            'memberships', coalesce((
                select jsonb_agg(to_jsonb(m) order by m.category_name)
                from api.memberships as m where m.patient_id = p.id
            ), '[]'),
            'payments', coalesce((
                select jsonb_agg(to_jsonb(pay) order by pay.mx_created_at desc, pay.id desc)
                from api.payments as pay where pay.patient_id = p.id
            ), '[]'),
            'invoices', coalesce((
                select jsonb_agg(
                    to_jsonb(i) || jsonb_build_object('lines', coalesce((
                        select jsonb_agg(to_jsonb(l) order by l.line_no)
                        from api.invoice_lines as l where l.invoice_id = i.id
                    ), '[]'))
                    order by i.invoice_date desc nulls last, i.id desc
                )
                from api.invoices as i where i.patient_id = p.id
            ), '[]')
        )
        from api.patients as p
        where p.id = p_patient_id
    );
end
$$;
