-- What moving a product to another programme would do, asked before doing it (issue 11: the
-- dashboard shows how many memberships a move rebuilds before the owner confirms it).
--
-- The counts mirror private.apply_product_category_change, the trigger that performs the
-- move: every patient who paid for the product has the membership of the new programme
-- rebuilt; the old programme's membership is rebuilt too when the patient still has payment
-- evidence there from other products, else removed (no contract, no staff decision) or kept
-- and re-settled. A change to that trigger must change this function with it (pgTAP 200
-- compares the preview with the move's own result).

create function api.preview_product_move(p_product_id uuid, p_category_id uuid)
returns jsonb
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_practice_id uuid;
    v_from uuid;
    v_result jsonb;
begin
    if p_product_id is null or p_category_id is null then
        raise exception 'a product and a programme are required' using errcode = '22023';
    end if;
    -- RLS: another practice's product is not found
    select p.practice_id, p.category_id into v_practice_id, v_from
    from app.products as p
    where p.id = p_product_id;
    if v_practice_id is null then
        raise exception 'product % not found', p_product_id using errcode = 'P0002';
    end if;
    if not coalesce(v_practice_id = any(private.current_admin_practice_ids()), false) then
        raise exception 'only an owner or admin of the practice may move its products'
        using errcode = '42501';
    end if;
    if not exists (
        select from app.categories as c where c.id = p_category_id and c.practice_id = v_practice_id
    ) then
        raise exception 'programme % is not one of this practice''s', p_category_id using errcode = '22023';
    end if;

    with patients as (
        select distinct pay.patient_id
        from app.invoice_lines as l
        inner join app.payment_invoices as pi on l.invoice_id = pi.invoice_id
        inner join app.payments as pay on pi.payment_id = pay.id
        where l.product_id = p_product_id and pay.patient_id is not null
    ),

    old_side as (
        -- evidence left in the old programme once this product's lines have moved: what makes
        -- private.refresh_membership_from_payments return a membership there
        select
            pt.patient_id,
            exists (
                select
                from app.payments as p
                inner join app.payment_invoices as pi on p.id = pi.payment_id
                inner join app.invoice_lines as l on pi.invoice_id = l.invoice_id
                where
                    p.patient_id = pt.patient_id
                    and l.category_id = v_from
                    and l.product_id is distinct from p_product_id
                    and (
                        (p.status in ('Approved', 'Settled') and p.type in ('Sale', 'SaleCompletion'))
                        or (
                            p.status = 'Declined'
                            and (
                                p.source = 'Recurring'
                                or exists (select from app.contract_payments as cp where cp.payment_id = p.id)
                            )
                        )
                    )
            ) as evidence_left,
            m.id as old_membership_id,
            (m.contract_id is null and m.staff_status is null) as removable
        from patients as pt
        left join app.memberships as m
            on m.practice_id = v_practice_id and pt.patient_id = m.patient_id and m.category_id = v_from
    )

    select jsonb_build_object(
        'product_id', p_product_id,
        'from_category_id', v_from,
        'to_category_id', p_category_id,
        'changed', v_from is distinct from p_category_id,
        'lines_moved', (
            select count(*) from app.invoice_lines as l
            where l.product_id = p_product_id and l.category_id is distinct from p_category_id
        ),
        'patients', count(*),
        'memberships_rebuilt', count(*) + count(*) filter (where o.evidence_left),
        'memberships_removed', count(*) filter (
            where not o.evidence_left and o.old_membership_id is not null and o.removable
        ),
        'memberships_kept', count(*) filter (
            where not o.evidence_left and o.old_membership_id is not null and not o.removable
        )
    )
    into v_result
    from old_side as o;

    if v_from = p_category_id then
        -- a confirmation moves nothing
        v_result := v_result || jsonb_build_object(
            'lines_moved', 0, 'memberships_rebuilt', 0, 'memberships_removed', 0, 'memberships_kept', 0
        );
    end if;
    return v_result;
end
$$;

comment on function api.preview_product_move(uuid, uuid) is
'Owners/admins: what api.set_product_category(product, programme) would do, without doing it: '
'lines to move, patients, memberships to rebuild, remove and keep (the same counts the move returns).';

revoke all on function api.preview_product_move(uuid, uuid) from public;
grant execute on function api.preview_product_move(uuid, uuid) to authenticated;
