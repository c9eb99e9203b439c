-- api.preview_product_move: what a product move would do, asked before doing it; the counts
-- equal what the move itself returns (rebuilt, removed, kept), and nothing changes. Owners
-- and admins only; staff refused, another practice's product not found, anon denied.
begin;
\ir _helpers.psql

select plan(19);

select tests.create_practice('Clinic A', 'clinic-a') as practice_a \gset
select tests.create_practice('Clinic B', 'clinic-b') as practice_b \gset
select tests.create_user('owner-a@example.test') as owner_a \gset
select tests.create_user('admin-a@example.test') as admin_a \gset
select tests.create_user('staff-a@example.test') as staff_a \gset
select tests.create_user('admin-b@example.test') as admin_b \gset
select tests.add_member(:'practice_a', :'owner_a', 'owner');
select tests.add_member(:'practice_a', :'admin_a', 'admin');
select tests.add_member(:'practice_a', :'staff_a', 'staff');
select tests.add_member(:'practice_b', :'admin_b', 'admin');
select tests.create_merchant_account(:'practice_a', 2001) as account_a \gset
select tests.map_product(:'practice_a', 'Testosterone', 'TRT');

-- Alice: Semaglutide only (Uncategorized, suggested Weight Loss); Bob: Semaglutide and
-- Gift card on one invoice (the gift card keeps evidence in Uncategorized); Carl: Semaglutide
-- only, and staff paused his membership (kept, not removed, when it empties).
select tests.process_payment(
    2001, tests.payment_json(12001, 2001, '2026-01-05 10:00+00', p_customer_name => 'Alice A'),
    tests.invoice_json(22001, 601, 'Alice A', array['Semaglutide'])
);
select tests.process_payment(
    2001, tests.payment_json(12002, 2001, '2026-01-06 10:00+00', p_customer_name => 'Bob A'),
    tests.invoice_json(22002, 602, 'Bob A', array['Semaglutide', 'Gift card'])
);
select tests.process_payment(
    2001, tests.payment_json(12003, 2001, '2026-01-07 10:00+00', p_customer_name => 'Carl A'),
    tests.invoice_json(22003, 603, 'Carl A', array['Semaglutide'])
);
select id as sema from app.products where practice_id = :'practice_a' and name = 'Semaglutide' \gset
select id as trt from app.products where practice_id = :'practice_a' and name = 'Testosterone' \gset
select tests.category_id(:'practice_a', 'Weight Loss') as weight_loss \gset
select tests.category_id(:'practice_a', 'Uncategorized') as uncategorized \gset
update app.memberships set staff_status = 'paused', staff_reason = 'travelling'
where patient_id = (select id from app.patients where name = 'Carl A');

-- staff, another practice, anon
select tests.authenticate_as(:'staff_a');
select throws_ok(
    format($$ select api.preview_product_move(%L, %L) $$, :'sema', :'weight_loss'),
    '42501', 'only an owner or admin of the practice may move its products', 'staff may not preview a move'
);
select tests.authenticate_as(:'admin_b');
select throws_ok(
    format($$ select api.preview_product_move(%L, %L) $$, :'sema', :'weight_loss'),
    'P0002', null, 'an admin of another practice does not find the product'
);
select tests.authenticate_as_anon();
select throws_ok(
    format($$ select api.preview_product_move(%L, %L) $$, :'sema', :'weight_loss'),
    '42501', null, 'anon may not call it'
);

-- bad input
select tests.authenticate_as(:'admin_a');
select throws_ok(
    format($$ select api.preview_product_move(%L, null) $$, :'sema'),
    '22023', 'a product and a programme are required', 'no programme: refused'
);
select throws_ok(
    format($$ select api.preview_product_move(%L, %L) $$, :'sema', tests.category_id(:'practice_b', 'TRT')),
    '22023', null, 'another practice''s programme: refused'
);
select throws_ok(
    format($$ select api.preview_product_move(%L, %L) $$, gen_random_uuid(), :'weight_loss'),
    'P0002', null, 'an unknown product: not found'
);

-- the preview, as the admin and as the owner
select api.preview_product_move(:'sema', :'weight_loss') as preview \gset
select is(
    :'preview'::jsonb - 'product_id' - 'from_category_id' - 'to_category_id',
    '{"changed": true, "patients": 3, "lines_moved": 3, "memberships_rebuilt": 4,
      "memberships_removed": 1, "memberships_kept": 1}'::jsonb,
    'three patients: three new-programme rebuilds, Bob''s gift card rebuilds his old one, '
    'Alice''s emptied one goes, Carl''s paused one stays'
);
select is(
    (:'preview'::jsonb ->> 'from_category_id')::uuid, :'uncategorized'::uuid, 'the preview names where it comes from'
);
select is(
    (select count(*) from app.memberships where practice_id = :'practice_a' and category_id = :'weight_loss'),
    0::bigint, 'the preview moved nothing'
);
select is(
    (select category_id from app.products where id = :'sema'), :'uncategorized'::uuid,
    'the product is where it was'
);
select tests.authenticate_as(:'owner_a');
select is(
    api.preview_product_move(:'sema', :'weight_loss'), :'preview'::jsonb, 'the owner sees the same preview'
);
select is(
    api.preview_product_move(:'trt', tests.category_id(:'practice_a', 'TRT')) ->> 'changed', 'false',
    'the same programme: a confirmation'
);
select is(
    (api.preview_product_move(:'trt', tests.category_id(:'practice_a', 'TRT')) ->> 'memberships_rebuilt')::integer,
    0, 'a confirmation rebuilds nothing'
);

-- the move returns exactly what the preview said
select tests.authenticate_as(:'admin_a');
select api.set_product_category(:'sema', :'weight_loss') as moved \gset
select is(
    :'moved'::jsonb,
    (:'preview'::jsonb - 'product_id' - 'from_category_id' - 'to_category_id' - 'patients'),
    'the move''s counts equal the preview''s'
);
select is(
    (select count(*) from app.memberships where practice_id = :'practice_a' and category_id = :'weight_loss'),
    3::bigint, 'after the move: three Weight Loss memberships'
);

-- moving back: Bob keeps his gift card membership, the others rebuild in Uncategorized
select api.preview_product_move(:'sema', :'uncategorized') as back \gset
select api.set_product_category(:'sema', :'uncategorized') as moved_back \gset
select is(
    :'moved_back'::jsonb,
    (:'back'::jsonb - 'product_id' - 'from_category_id' - 'to_category_id' - 'patients'),
    'moving back: the move''s counts equal the preview''s again'
);
select is((:'back'::jsonb ->> 'patients')::integer, 3, 'moving back: three patients');

-- a product without payments
select tests.clear_authentication();
select private.upsert_product(:'practice_a', 'Sildenafil 20mg') as sild \gset
select tests.authenticate_as(:'admin_a');
select is(
    api.preview_product_move(:'sild', tests.category_id(:'practice_a', 'ED')) - 'product_id' - 'from_category_id'
    - 'to_category_id',
    '{"changed": true, "patients": 0, "lines_moved": 0, "memberships_rebuilt": 0,
      "memberships_removed": 0, "memberships_kept": 0}'::jsonb,
    'a product nobody paid for rebuilds nothing'
);
select tests.clear_authentication();

select is(
    (select count(*) from pg_catalog.pg_proc where oid = 'api.preview_product_move(uuid, uuid)'::regprocedure
        and not prosecdef),
    1::bigint, 'the preview is an invoker function'
);

select * from finish();
rollback;
